"""Every test folder is a package, so that a unit test and an end-to-end test may share a file name."""
