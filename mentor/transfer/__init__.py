"""Transfer (issue 16): an agent's training that starts from what another run learned."""
