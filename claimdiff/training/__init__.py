"""From a judge run to training: exports (`pairs`, `rwr`, `verl`) built from `rewards/` per
sample, and the trainers (`dpo`, `rwr_trainer`) on TRL + PEFT. Heavy libraries (torch, trl,
peft, datasets, matplotlib) are imported inside the functions that need them."""
