"""The names of the policy's model inputs, shared by the actor, the rollout and every method that replays them."""

#: what the processor makes from an observation and an instruction (the prompt and the images)
PROMPT_INPUT_KEYS = ("input_ids", "attention_mask", "pixel_values")
#: what the actor's forward scores: the prompt inputs and the sampled (or expert) action tokens
MODEL_INPUT_KEYS = (*PROMPT_INPUT_KEYS, "action_tokens")
