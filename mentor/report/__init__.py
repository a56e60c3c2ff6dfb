"""Reports of a run folder: a learning-curve plot and a one-page Markdown and HTML summary."""
