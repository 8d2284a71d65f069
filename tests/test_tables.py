"""The one table writer (colorize/tables.py), by hand."""

from colorize.tables import csv_text, markdown, records_csv


def test_markdown_puts_floats_at_four_decimals_the_rest_as_text_and_escapes_pipes():
    assert markdown(["run", "acc", "epochs"], [["a", 0.123456, 3], ["b|c", 1.0, ""]]) == (
        "| run | acc | epochs |\n|---|---|---|\n| a | 0.1235 | 3 |\n| b\\|c | 1.0000 |  |\n"
    )


def test_csv_keeps_full_precision_and_quotes_what_needs_it():
    assert csv_text(["a", "b"], [[0.123456789, "x, y"]]) == 'a,b\n0.123456789,"x, y"\n'
    assert records_csv([{"k": 1, "v": "w"}, {"k": 2, "v": ""}]) == "k,v\n1,w\n2,\n"
    assert records_csv([]) == ""
