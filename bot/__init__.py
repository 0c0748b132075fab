"""loanbot: Rasa assistant for consumer-loan customer service (NLU components, text helpers)."""
