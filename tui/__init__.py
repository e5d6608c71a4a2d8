"""relman's Textual front end: the app, its messages and styles, the command line."""
