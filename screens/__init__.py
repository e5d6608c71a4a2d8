"""One module per Textual screen. Screens call core.api and hold no domain logic."""
