from scae_hash.cli import run

run()
