"""Reproducing the GRPO finetune of the multimodal model: data, rewards, trainer, recipes."""
