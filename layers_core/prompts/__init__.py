"""Prompt cases, fact batteries, answer alignment, chat templates and token text."""
