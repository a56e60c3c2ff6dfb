"""Continual learning (issue 16): tasks trained one after another, what is kept and what is lost."""
