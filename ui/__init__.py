"""The Gradio dashboard over visagent runs and traces."""
