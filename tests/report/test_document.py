"""The report's document model (colorize/report/document.py): one Document, Markdown and HTML."""

from PIL import Image as PILImage

from colorize.report.document import Document, Heading, Image, Paragraph, Table


def test_a_document_renders_each_block_to_markdown_and_self_contained_html(tmp_path):
    PILImage.new("RGB", (4, 3), (200, 10, 10)).save(tmp_path / "f.png")
    doc = Document("Study <1>")
    doc.add(Heading("Learning rate"), Paragraph("`lr=0.1` wins & 1 diverges"),
            Table(["lr", "acc", "shows"],
                  [["0.1", "0.7504 ± 0.0012 (n=3)", ["a beats b", "c ties d"]], ["1", "—", []]]),
            Image(tmp_path.joinpath("f.png").relative_to(tmp_path), "curves"))
    assert doc.markdown() == ("# Study <1>\n\n## Learning rate\n\n`lr=0.1` wins & 1 diverges\n\n"
                              "| lr | acc | shows |\n|---|---|---|\n"
                              "| 0.1 | 0.7504 ± 0.0012 (n=3) | a beats b; c ties d |\n"
                              "| 1 | — | — |\n\n![curves](f.png)\n\n*curves*\n")
    html = doc.html(tmp_path)
    assert "<title>Study &lt;1&gt;</title>" in html and "<h2>Learning rate</h2>" in html
    assert "<p><code>lr=0.1</code> wins &amp; 1 diverges</p>" in html and "`" not in html  # code, not backticks
    assert ("<tr><td class='num'>0.1</td><td class='num'>0.7504 ± 0.0012 (n=3)</td>"
            "<td><ul><li>a beats b</li><li>c ties d</li></ul></td></tr>") in html  # numbers right, lists as lists
    assert "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left" in html  # text left-aligned
    assert "src='data:image/png;base64,iVBOR" in html and "f.png" not in html  # embedded, not linked
