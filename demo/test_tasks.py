"""Tests of the demo's task generator (standard library only): python3 -m unittest demo/test_tasks.py"""
import json
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import chat_prompts  # noqa: E402
import tasks  # noqa: E402


def exprs(rows):
    return {r["prompt"] for r in rows}


class TestTasks(unittest.TestCase):
    def test_splits_disjoint(self):
        seen = {}
        for split, n in (("train", 3000), ("val", 400), ("test", 400)):
            got = set()
            for seed in (0, 1):
                got |= exprs(tasks.problems(split, seed, n))
            seen[split] = got
        self.assertFalse(seen["train"] & seen["val"])
        self.assertFalse(seen["train"] & seen["test"])
        self.assertFalse(seen["val"] & seen["test"])
        for split, got in seen.items():
            for p in got:
                nums, ops = tasks.parse_prompt(p)
                self.assertEqual(tasks.split_of(tasks.expression(nums, ops, sep="")), split)

    def test_answers_right(self):
        for r in tasks.problems("test", 0, 500):
            expr = r["prompt"].removeprefix("What is ").removesuffix("?")
            self.assertRegex(expr, r"^[0-9 +-]+$")
            self.assertEqual(int(r["answer"]), eval(expr))  # digits, spaces, + and - only
            nums, ops = tasks.parse_prompt(r["prompt"])
            self.assertTrue(3 <= len(nums) <= 5)
            total = nums[0]
            for op, b in zip(ops, nums[1:]):
                total = total + b if op == "+" else total - b
                self.assertTrue(0 <= total <= 99)

    def test_trace_steps_right(self):
        for r in tasks.problems("train", 3, 300):
            t = r["target"]
            self.assertTrue(t.startswith("<think>\n"))
            thinking, answer = t.split("\n</think>\n")
            self.assertEqual(answer, r["answer"])
            lines = thinking.split("\n")[1:]
            nums, ops = tasks.parse_prompt(r["prompt"])
            if "=" not in lines[0]:  # the restatement
                self.assertEqual(lines.pop(0), tasks.expression(nums, ops, sep=""))
            totals = []
            for line in lines:
                m = re.fullmatch(r"(check )?(\d+)([+-])(\d+)=(\d+)", line)
                self.assertIsNotNone(m, line)
                a, op, b, c = int(m[2]), m[3], int(m[4]), int(m[5])
                self.assertEqual(c, a + b if op == "+" else a - b)
                if not m[1]:
                    totals.append(c)
            self.assertEqual(len(totals), len(ops))
            self.assertEqual(totals[-1], int(r["answer"]))

    def test_deterministic(self):
        self.assertEqual(tasks.problems("val", 7, 50), tasks.problems("val", 7, 50))
        self.assertNotEqual(tasks.problems("val", 7, 50), tasks.problems("val", 8, 50))

    def test_chat_prompts_disjoint(self):
        train, test = chat_prompts.chat_prompts("train"), chat_prompts.chat_prompts("test")
        self.assertEqual(len(train), len(set(train)))
        self.assertEqual(len(test), len(set(test)))
        self.assertFalse(set(train) & set(test))
        task_prompts = exprs(tasks.problems("train", 0, 100))
        self.assertFalse(set(train) & task_prompts)

    def test_cli_jsonl(self):
        out = subprocess.run([sys.executable, os.path.join(HERE, "tasks.py"), "--split", "test", "--seed", "1",
                              "--n", "5", "--no-target"], capture_output=True, text=True, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(rows), 5)
        for r in rows:
            self.assertEqual(set(r), {"id", "prompt", "answer", "kind"})
            self.assertEqual(r["kind"], "reasoning")
        out = subprocess.run([sys.executable, os.path.join(HERE, "tasks.py"), "--chat", "test"],
                             capture_output=True, text=True, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(rows), len(chat_prompts.chat_prompts("test")))
        self.assertTrue(all(r["kind"] == "chat" for r in rows))


if __name__ == "__main__":
    unittest.main()
