"""placeholder until written"""
def gen_smollm2(*a): raise NotImplementedError
def gen_qwen_tokenizer(*a): raise NotImplementedError
