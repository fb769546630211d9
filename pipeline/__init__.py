"""Table in, model and report out: column groups, fusion estimators, CV, report, CLI."""
