"""Rewrite the configuration table in README.md from the settings' own documentation:
``.venv/bin/python -m scripts.readme_settings`` after adding or changing a setting."""

from pathlib import Path

from server.settings import markdown_table

BEGIN, END = "<!-- settings:begin -->\n", "<!-- settings:end -->"


def main() -> None:
    readme = Path("README.md")
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + markdown_table() + text[end:], encoding="utf-8")


if __name__ == "__main__":
    main()
