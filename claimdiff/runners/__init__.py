"""PipelineOptions presets. Only this package builds PipelineOptions."""
