"""Server-side reports: PDF documents (fpdf2) of care compliance and training records."""
