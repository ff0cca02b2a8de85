"""Write sample_docs/docs' PDF, DOCX and PPTX: Tidewater's operations handbook, its upgrade
guide and its roadmap deck.

    uv run python scripts/make_sample_docs.py [OUT_DIR]   # default: sample_docs/docs

In: nothing but the text below (fpdf2, python-docx and python-pptx are dev dependencies).
Out: `operations-handbook.pdf`, `upgrade-guide.docx` and `roadmap.pptx` in OUT_DIR, the same
bytes on every run: creation dates and document properties are fixed, and the Office files'
zip entries are rewritten with a fixed timestamp (the writers stamp them with the clock).
Each file holds one sentence found nowhere else in sample_docs (`UNIQUE`), for search.
A writer's error propagates: nothing here is worth hiding.
"""

from __future__ import annotations

import datetime as dt
import sys
import zipfile
from pathlib import Path

__all__ = ["UNIQUE", "main", "write_all"]

ROOT = Path(__file__).resolve().parent.parent
WHEN = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
AUTHOR = "Tidewater maintainers"
ZIP_TIME = (2026, 11, 2, 9, 30, 0)

UNIQUE = {
    "operations-handbook.pdf": "The quarterly uptime report lists every incident by severity.",
    "upgrade-guide.docx": "Take a snapshot of the queue database before you run the upgrade.",
    "roadmap.pptx": "A read-only replica for reporting queries is planned for the second half.",
}

# --- the handbook (PDF) ------------------------------------------------------------------

HANDBOOK: list[tuple[str, list[tuple[str, list[str]]]]] = [
    (
        "On-call rotation",
        [
            (
                "Who is on call",
                [
                    "Two maintainers share each week of on-call duty: a primary who answers "
                    "pages and a secondary who takes over when the primary has not acknowledged "
                    "a page within fifteen minutes. The rotation changes hands every Monday at "
                    "ten in the morning, after the handover meeting.",
                    "The handover is short on purpose. The outgoing primary walks through open "
                    "incidents, anything that paged more than once, and every manual change made "
                    "to a production queue during the week, so that nobody inherits a surprise.",
                ],
            ),
            (
                "Paging etiquette",
                [
                    "A page is for something that needs a human now: jobs piling up faster than "
                    "they drain, a backend that refuses writes, or a dead-letter queue that grows "
                    "by more than a hundred entries an hour. Everything else becomes a ticket "
                    "and waits for office hours.",
                ],
            ),
        ],
    ),
    (
        "Incidents",
        [
            (
                "Severity levels",
                [
                    "Severity one means jobs are being lost or duplicated for paying users. "
                    "Severity two means jobs are delayed by more than ten minutes. Severity "
                    "three covers degraded features that have a workaround, such as a dashboard "
                    "page that no longer loads.",
                    UNIQUE["operations-handbook.pdf"],
                    "An incident keeps the severity it was opened with in the report, even when "
                    "it is downgraded later, so that the figures show how often the team was "
                    "woken up rather than how bad things turned out to be.",
                ],
            ),
            (
                "Post-incident reviews",
                [
                    "Every severity one and two incident gets a written review within five "
                    "working days. The review is blameless: it describes what the system did, "
                    "what the people involved knew at the time, and which safeguard would have "
                    "stopped the problem earlier. Action items get an owner and a due date.",
                ],
            ),
        ],
    ),
    (
        "Capacity planning",
        [
            (
                "Growth estimates",
                [
                    "Storage for finished jobs grows with the retention window, not with "
                    "traffic alone. At the default retention of seven days, a queue that "
                    "handles a million jobs a day keeps roughly seven million rows, about "
                    "four gigabytes with typical payloads.",
                    "Review the estimate every quarter against the real figures. When the "
                    "database is more than half full, shorten the retention window or move the "
                    "archive to cold storage before buying a larger disk.",
                ],
            ),
            (
                "Load tests",
                [
                    "Before a large customer goes live, replay a day of their expected traffic "
                    "against a staging copy at three times the speed. Record the queue depth, "
                    "the time from enqueue to start, and the disk throughput, and keep the "
                    "numbers beside the capacity estimate.",
                ],
            ),
        ],
    ),
]


def write_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(WHEN)
    pdf.set_title("Tidewater operations handbook")
    pdf.set_author(AUTHOR)
    pdf.set_creator("scripts/make_sample_docs.py")
    pdf.set_producer("fpdf2")
    pdf.set_margins(22, 22, 22)
    for number, (chapter, sections) in enumerate(HANDBOOK, 1):
        pdf.add_page()
        if number == 1:
            pdf.set_font("helvetica", "B", 22)
            pdf.cell(0, 14, "Tidewater operations handbook", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("helvetica", "", 11)
            pdf.multi_cell(
                0,
                6,
                "How the maintainers run the hosted Tidewater service: who answers pages, "
                "how incidents are graded and reviewed, and how much room the queues need.",
                new_x="LMARGIN",
                new_y="NEXT",
            )
            pdf.ln(4)
        pdf.start_section(f"{number}. {chapter}", level=0)
        pdf.set_font("helvetica", "B", 16)
        pdf.cell(0, 10, f"{number}. {chapter}", new_x="LMARGIN", new_y="NEXT")
        for sub, (heading, paragraphs) in enumerate(sections, 1):
            pdf.start_section(f"{number}.{sub} {heading}", level=1)
            pdf.set_font("helvetica", "B", 13)
            pdf.ln(2)
            pdf.cell(0, 8, f"{number}.{sub} {heading}", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("helvetica", "", 11)
            for paragraph in paragraphs:
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
    pdf.output(str(path))


# --- the upgrade guide (DOCX) -------------------------------------------------------------


def write_docx(path: Path) -> None:
    from docx import Document

    doc = Document()
    _core(doc.core_properties, "Upgrading Tidewater between major versions")
    doc.add_heading("Upgrading Tidewater between major versions", level=0)
    doc.add_paragraph(
        "This guide walks an operator through a major upgrade of a running installation: "
        "what to check first, the order of the steps, and how to go back if something fails."
    )
    doc.add_heading("Before you start", level=1)
    doc.add_paragraph(
        "Read the release notes of every version between yours and the target, and note each "
        "setting that was renamed or removed. Plan the upgrade for a quiet hour."
    )
    doc.add_heading("Checklist", level=2)
    for item in (
        "Pause the producers that can wait, so that the queues shrink.",
        UNIQUE["upgrade-guide.docx"],
        "Confirm that the dead-letter queue is empty or exported.",
        "Tell the on-call pair which hour the upgrade will take.",
    ):
        doc.add_paragraph(item, style="List Bullet")
    doc.add_heading("Steps", level=1)
    doc.add_paragraph(
        "Stop the consumers first and the producers last. Install the new version, run the "
        "storage upgrade command once, then start the consumers again and watch the queue "
        "depth fall before the producers resume."
    )
    doc.add_heading("Time each step takes", level=2)
    table = doc.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, ("Step", "Small site", "Large site"), strict=True):
        cell.text = text
    for row in (
        ("Drain the queues", "5 minutes", "40 minutes"),
        ("Storage upgrade", "1 minute", "12 minutes"),
        ("Restart and verify", "5 minutes", "15 minutes"),
    ):
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    doc.add_heading("Going back", level=1)
    doc.add_paragraph(
        "A storage upgrade cannot be undone in place. To return to the old version, stop "
        "everything, restore the snapshot, and reinstall the previous release."
    )
    doc.save(str(path))
    _fix_zip(path)


# --- the roadmap (PPTX) -------------------------------------------------------------------

SLIDES: list[tuple[str, list[str]]] = [
    ("Where Tidewater goes next", []),
    (
        "What users asked for",
        [
            "Faster recovery after a crash",
            "Clearer reports for operators",
            "Fewer settings to learn",
        ],
    ),
    (
        "Reporting",
        [
            "Queue history kept for ninety days",
            UNIQUE["roadmap.pptx"],
            "Exports to CSV from the dashboard",
        ],
    ),
    ("Milestones", []),
    ("Questions", ["Open a discussion on the project's forum", "Or ask at the monthly call"]),
]
MILESTONES = [
    ("Milestone", "Quarter", "Status"),
    ("Crash recovery in seconds", "Q1", "In progress"),
    ("Queue history", "Q2", "Designed"),
    ("Reporting replica", "Q3", "Planned"),
]
NOTES = (
    "Speaker notes: thank the contributors who sent the crash recovery patches, and remind "
    "the audience that dates are estimates."
)


def write_pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    _core(deck.core_properties, "Tidewater roadmap")
    title_layout, content_layout, title_only = (
        deck.slide_layouts[0],
        deck.slide_layouts[1],
        (deck.slide_layouts[5]),
    )
    for n, (title, bullets) in enumerate(SLIDES):
        if n == 0:
            slide = deck.slides.add_slide(title_layout)
            slide.shapes.title.text = title
            slide.placeholders[1].text = "Plans for the next four quarters"
            slide.notes_slide.notes_text_frame.text = NOTES
        elif title == "Milestones":
            slide = deck.slides.add_slide(title_only)
            slide.shapes.title.text = title
            rows, cols = len(MILESTONES), len(MILESTONES[0])
            shape = slide.shapes.add_table(
                rows, cols, Inches(0.5), Inches(1.8), Inches(9), Inches(0.5 * rows)
            )
            for r, row in enumerate(MILESTONES):
                for c, text in enumerate(row):
                    shape.table.cell(r, c).text = text
        else:
            slide = deck.slides.add_slide(content_layout)
            slide.shapes.title.text = title
            body = slide.placeholders[1].text_frame
            body.text = bullets[0]
            for bullet in bullets[1:]:
                body.add_paragraph().text = bullet
    deck.save(str(path))
    _fix_zip(path)


# --- determinism --------------------------------------------------------------------------


def _core(props: object, title: str) -> None:
    for name, value in (
        ("title", title),
        ("author", AUTHOR),
        ("last_modified_by", AUTHOR),
        ("created", WHEN.replace(tzinfo=None)),
        ("modified", WHEN.replace(tzinfo=None)),
        ("revision", 1),
    ):
        setattr(props, name, value)


def _fix_zip(path: Path) -> None:
    """The same entries in the same order, each stamped ZIP_TIME instead of the clock."""
    with zipfile.ZipFile(path) as old:
        entries = [(info.filename, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for name, data in entries:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            new.writestr(info, data)


def write_all(out: Path) -> list[Path]:
    """The three files, written into `out` (made if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in UNIQUE]
    for path, write in zip(paths, (write_pdf, write_docx, write_pptx), strict=True):
        write(path)
    return paths


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "sample_docs" / "docs"
    for path in write_all(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
