"""Operations: the actions behind the commands.

With scripts/ and lib/cli.py, the only code that prints, prompts or picks exit codes.
"""
