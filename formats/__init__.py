"""File formats, read and written: MyAnimeList's XML export, the account file, and JSON read
within bounds. Pure code: no service state, no HTTP. A file that cannot be taken raises a
`formats.problems.FileProblem`, which the route turns into its answer."""
