"""The report: tables (markdown, LaTeX, CSV) and seaborn figures rebuilt from results files, and the study's published
numbers. The Python API's ``aebench.report(...)`` calls :func:`aebench.reporting.make.make_report`."""
