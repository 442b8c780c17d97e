"""PDF documents with fpdf2: every page names the agency, the report and its period, and
carries the time it was generated and "Page n of N"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fpdf import FPDF


def latin1(text: object) -> str:
    """The core PDF fonts cover Latin-1; anything else becomes its nearest plain form."""
    value = str(text)
    for a, b in (("–", "-"), ("—", "-"), ("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"), ("…", "...")):
        value = value.replace(a, b)
    return value.encode("latin-1", "replace").decode("latin-1")


class Report(FPDF):
    def __init__(self, agency: str, title: str, period: str, generated_at: datetime) -> None:
        super().__init__(format="A4")
        self.agency, self.report_title, self.period = latin1(agency), latin1(title), latin1(period)
        self.generated = generated_at.strftime("%Y-%m-%d %H:%M UTC")
        self.set_auto_page_break(True, margin=18)
        self.alias_nb_pages()
        self.set_title(self.report_title)
        self.set_creator(self.agency)
        self.add_page()

    def header(self) -> None:
        self.set_font("Helvetica", "B", 14)
        self.cell(0, 8, self.agency, new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "B", 12)
        self.cell(0, 7, self.report_title, new_x="LMARGIN", new_y="NEXT")
        self.set_font("Helvetica", "", 9)
        self.cell(0, 5, f"Period: {self.period}    Generated: {self.generated}", new_x="LMARGIN", new_y="NEXT")
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", "", 8)
        self.cell(0, 8, f"{self.agency} - {self.report_title} - Page {self.page_no()} of {{nb}}", align="C")

    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font("Helvetica", "B", 11)
        self.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def line_of_text(self, text: str) -> None:
        self.set_font("Helvetica", "", 10)
        self.multi_cell(0, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def rows_table(self, headings: Sequence[str], rows: Sequence[Sequence[object]],
              widths: Sequence[float]) -> None:
        self.set_font("Helvetica", "B", 9)
        for text, width in zip(headings, widths, strict=True):
            self.cell(width, 7, latin1(text), border=1)
        self.ln()
        self.set_font("Helvetica", "", 9)
        for row in rows:
            if self.will_page_break(7):
                self.add_page()
            for value, width in zip(row, widths, strict=True):
                text = latin1(value)
                while text and self.get_string_width(text) > width - 2:
                    text = text[:-1]
                self.cell(width, 7, text, border=1)
            self.ln()
        if not rows:
            self.line_of_text("Nothing recorded.")

    def bytes(self) -> bytes:
        return bytes(self.output())
