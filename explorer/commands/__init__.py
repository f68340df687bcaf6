"""The headless command line: the parser and the options shared by every command
(parser.py, options.py), one module per subcommand. No widgets: a command draws its images
through export/ and writes its files there."""
