"""The build: configuration -> train (cached) -> evaluate -> export -> figures
-> manifest -> staged docs + browser assets -> MkDocs (strict) -> site/.

Each stage is a plain function from inputs to files, with its inputs hashed, so
running it again with the same inputs does nothing. Imports ``meta``; ``meta``
never imports this package.
"""
