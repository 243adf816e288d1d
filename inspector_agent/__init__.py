"""Inspector: an agentic chat assistant for industrial visual inspection."""

__version__ = "0.1.0"
