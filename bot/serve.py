"""`python -m bot.serve run ...`: Rasa's own CLI with the per-turn overheads removed.

Takes exactly `rasa`'s arguments (`python -m bot.serve run -m models/... --enable-api`), applies
`bot.tuning` unless LOANBOT_RASA_TUNING=0, then hands over to Rasa's `main()`.
"""

from __future__ import annotations

from bot import inprocess_actions, tuning


def main() -> None:
    tuning.apply(tuning.selected())
    if inprocess_actions.selected_mode() == "inprocess":
        inprocess_actions.install()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
