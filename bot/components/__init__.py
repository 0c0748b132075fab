"""Custom Rasa 3.6 graph components for Chinese loan customer service (see docs/nlu.md)."""
