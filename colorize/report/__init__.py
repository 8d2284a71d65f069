"""Report: comparison figures, findings, sample grids and the document they are written into;
`python -m colorize.report` builds one from tracked sweeps."""
