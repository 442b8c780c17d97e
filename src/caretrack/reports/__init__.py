"""Server-side reports: SVG bar charts and PDF documents (fpdf2)."""
