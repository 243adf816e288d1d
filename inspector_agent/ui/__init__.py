"""The Gradio app: Inspect, Knowledge, History and Showcase tabs plus the ``inspect`` API."""
