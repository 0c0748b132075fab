"""Unit tests for bot.text and the custom Rasa components."""
