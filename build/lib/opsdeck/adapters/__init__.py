"""One module per outside system: Terraform, Packer, AWS, git, keyring and the local cloud."""
