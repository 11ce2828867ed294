"""Reading a run's outputs back for people: summaries now, Great Expectations suites later."""
