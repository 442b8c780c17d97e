"""Assessment templates, carers' attempts, marking, and the competencies they certify."""
