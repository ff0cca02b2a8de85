"""Looking after an index: `gc` reclaims what nothing uses, `doctor` checks and salvages."""
