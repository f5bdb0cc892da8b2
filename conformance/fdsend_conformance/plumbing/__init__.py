"""The pytest plumbing: the plugin, its options, backends, the contract, expected failures,
isolation, the suite's fixtures and the conformance report."""
