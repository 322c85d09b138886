"""Layer 4, integrations: deepraft inside the servers platforms already run (a Synapse module
for Matrix homeservers)."""
