"""Plans: an environment planned (`terraform init`, `plan -out`, `show -json`, the plan cache) and the saved
plan read (counts, resources, changed attributes) and kept as it was shown."""
