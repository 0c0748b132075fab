"""The trainer loop Rasa Open Source no longer ships (Rasa X was closed).

inbox (what the bot failed on) → annotate → scaffold/check data → train a candidate →
compare with the running model → switch the running Rasa server without downtime.
Each step is a module here; `loanbot` (bot/cli.py) exposes them as commands.
"""
