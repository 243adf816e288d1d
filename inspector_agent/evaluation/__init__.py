"""Evaluation: localisation metrics on MVTec-AD-layout folders (and, later, the MMAD protocol)."""
