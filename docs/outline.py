"""The book's structure: the outline's 9 chapters and their sections, and what lives in each.

The outline (``/work/shared/seed``, in Chinese) is the table of contents. Each section lists
what the project has for it:

- tutorials: a tutorial ``tutorials/chXX_Y_<topic>.py`` joins section X.Y by its name alone,
  so a new tutorial appears in the book without touching this file;
- chapter pages (prose, ``docs/chapters/<stem>.md``), when they exist;
- CLI commands (``duetrl <command>``) and API modules (``duetrl.core...`` and the mirrored
  ``backends/{torch,tf}/<name>.py``), placed by the patterns below; the reference pages for
  them are generated at build time (``generated/cli/<command>``, ``generated/api/<module>``).

What a section really has is computed from the files (:func:`coverage`): besides the pieces
placed above, a tutorial that names the section in its opening ("Outline 2.1.1 ... and listing
5.1") and a chapter page with a heading numbered in it. Its status follows (a runnable
tutorial, text only, reference only, or "not built yet": a section never disappears).
``docs/outline_pages.py`` writes the pages: one per chapter, ``outline/chNN.md``, and the
contents at a glance, ``outline/contents.md``.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Section:
    """One numbered section X.Y of the outline."""

    number: str  # "4.2"
    title_zh: str  # the outline's own title
    title_en: str
    subsections: tuple[tuple[str, str], ...] = ()  # (Chinese, English) titles of X.Y.1, X.Y.2...
    commands: tuple[str, ...] = ()  # top-level CLI commands
    modules: tuple[str, ...] = ()  # fnmatch patterns over "core.x.y" and "backends.name"
    pages: tuple[str, ...] = ()  # chapter pages (docnames) that belong here


@dataclass(frozen=True)
class Chapter:
    """One of the outline's 9 chapters."""

    number: int
    title_zh: str
    title_en: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    pages: tuple[str, ...] = ()  # chapter pages about the whole chapter


S = Section
CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "背景介绍", "Background", (
        S("1.1", "大规模语言模型概述", "Large language models: an overview", (
            ("语言模型的定义与发展历程", "What a language model is, and how it developed"),
            ("大规模语言模型的特点与优势", "What makes large language models strong"),
            ("当前主流的大规模语言模型", "Today's main large language models"))),
        S("1.2", "强化学习概述", "Reinforcement learning: an overview", (
            ("强化学习的基本概念", "Basic concepts of reinforcement learning"),
            ("强化学习的核心要素", "The core elements of reinforcement learning"),
            ("强化学习的主要算法", "The main algorithms of reinforcement learning")),
          commands=("demo", "info"), modules=("core.backend", "core.interfaces*")),
        S("1.3", "大规模语言模型与强化学习的结合",
          "Large language models meet reinforcement learning", (
            ("大规模语言模型在强化学习中的应用",
             "Large language models used in reinforcement learning"),
            ("强化学习在大规模语言模型中的应用",
             "Reinforcement learning used in large language models"),
            ("二者结合的意义与前景", "Why the combination matters, and where it goes"))),
    ), pages=("chapters/ch01_background",)),
    Chapter(2, "核心概念与联系", "Core concepts and how they connect", (
        S("2.1", "大规模语言模型的核心概念", "Core concepts of large language models", (
            ("Transformer架构", "The Transformer architecture"),
            ("自注意力机制", "Self-attention"),
            ("预训练与微调", "Pretraining and fine-tuning")),
          commands=("lm",),
          modules=("core.lm", "core.lm.*", "core.interfaces.attention", "core.interfaces.lm",
                   "backends.gpt", "backends.training", "backends.optim", "core.reference.optim",
                   "core.initializers", "core.weights", "backends.weights")),
        S("2.2", "强化学习的核心概念", "Core concepts of reinforcement learning", (
            ("马尔可夫决策过程", "Markov decision processes"),
            ("价值函数与策略函数", "Value functions and policy functions"),
            ("探索与利用", "Exploration and exploitation")),
          commands=("bandit",),
          modules=("core.bandits", "core.envs", "core.envs.identity", "core.envs.vector")),
        S("2.3", "大规模语言模型与强化学习的联系", "How large language models and RL connect", (
            ("序列决策问题", "Sequential decision problems"),
            ("奖励函数设计", "Designing the reward function"),
            ("策略优化方法", "Policy optimisation methods")),
          modules=("core.rlhf.mdp", "core.rlhf.tasks")),
    )),
    Chapter(3, "核心算法原理具体操作步骤", "Core algorithms, step by step", (
        S("3.1", "基于强化学习的大规模语言模型训练算法",
          "Training large language models with reinforcement learning", (
            ("算法流程概述", "The algorithm at a glance"),
            ("环境构建与状态表示", "Building the environment; representing the state"),
            ("动作空间与策略函数设计", "The action space and the policy"),
            ("奖励函数设计与优化目标", "The reward function and the objective"),
            ("训练过程与收敛性分析", "Training, and whether it converges")),
          commands=("rlhf",),
          modules=("core.rlhf", "core.rlhf.*", "core.reference.rlhf*", "core.learners",
                   "core.learners.rlhf",
                   "backends.rlhf", "backends.objectives",
                   "backends.ppo", "backends.agents")),
        S("3.2", "基于大规模语言模型的强化学习算法",
          "Reinforcement learning algorithms built on large language models", (
            ("算法流程概述", "The algorithm at a glance"),
            ("状态表示与动作空间设计", "Representing states; designing the action space"),
            ("策略函数与价值函数近似", "Approximating the policy and the value function"),
            ("奖励函数设计与优化目标", "The reward function and the objective"),
            ("训练过程与收敛性分析", "Training, and whether it converges")),
          commands=("play", "agent", "dt"),
          modules=("core.envs.text", "core.envs.text.*", "core.agents.tokenizer",
                   "core.agents.batch", "core.agents.settings", "core.agents.train",
                   "core.agents.episodes", "core.agents.evaluation",
                   "core.reference.lm_agent", "core.learners.lm_agent", "backends.lm_agent",
                   "core.agents", "core.agents.decision_transformer", "core.agents.dt_data",
                   "backends.decision_transformer", "core.reference.decision_transformer",
                   "core.agents.lm_reward"),
          pages=("chapters/ch03_2_lm_agents",)),
    )),
    Chapter(4, "数学模型和公式详细讲解举例说明",
            "Mathematical models and formulas, with examples", (
        S("4.1", "大规模语言模型的数学原理", "The mathematics of large language models", (
            ("Transformer的数学表示", "The Transformer in equations"),
            ("自注意力机制的数学解释", "Self-attention, mathematically"),
            ("预训练损失函数与优化过程", "The pretraining loss and its optimisation")),
          modules=("core.reference.attention", "core.reference.gpt", "core.reference.functional",
                   "core.tolerances", "core.constants")),
        S("4.2", "强化学习的数学原理", "The mathematics of reinforcement learning", (
            ("马尔可夫决策过程的数学定义", "The Markov decision process, defined"),
            ("价值函数与贝尔曼方程", "Value functions and the Bellman equation"),
            ("策略梯度定理与REINFORCE算法", "The policy gradient theorem and REINFORCE")),
          commands=("solve",),
          modules=("core.reference.returns", "core.reference.policy",
                   "core.reference.dynamic_programming", "core.reference.algorithms",
                   "core.reference", "core.tabular")),
    )),
    Chapter(5, "项目实践：代码实例和详细解释说明", "Practice: code, explained", (
        S("5.1", "基于PyTorch实现Transformer", "A Transformer in PyTorch", (),
          commands=("compare", "diff"),
          modules=("backends.attention", "core.mirror", "backends.autodiff",
                   "backends.runtime")),
        S("5.2", "基于TensorFlow实现REINFORCE算法", "REINFORCE in TensorFlow", (),
          commands=("train",),
          modules=("backends.reinforce", "backends.reinforce_baseline", "backends.policy",
                   "backends.returns", "core.rl", "core.rl.compare", "core.rl.rollout",
                   "core.rl.session", "core.rl.base", "core.interfaces.rl_settings",
                   "core.rl.train", "core.rl.host_policy", "core.run", "core.run.*",
                   "core.checkpoint", "core.tensorboard", "core.plots",
                   "core.figure_language")),
    )),
    Chapter(6, "实际应用场景", "Applications", (
        S("6.1", "基于强化学习的对话生成", "Dialogue generation with reinforcement learning", (
            ("问题定义与建模", "The problem and its model"),
            ("算法设计与实现", "Algorithm design and implementation"),
            ("实验结果与分析", "Results and analysis")),
          commands=("dialogue",),
          modules=("core.cases.dialogue", "core.cases.dialogue.*", "core.reference.dialogue*",
                   "backends.dialogue"),
          pages=("chapters/ch06_1_rl_dialogue",)),
        S("6.2", "基于大规模语言模型的推荐系统",
          "Recommender systems built on large language models", (
            ("问题定义与建模", "The problem and its model"),
            ("算法设计与实现", "Algorithm design and implementation"),
            ("实验结果与分析", "Results and analysis")),
          commands=("recommend",),
          modules=("core.cases.recommender", "core.cases.recommender.*",
                   "core.reference.recommender", "backends.recommender"),
          pages=("chapters/ch06_2_recommendation",)),
        S("6.3", "其他应用场景", "Other applications", (
            ("智能问答", "Question answering"),
            ("机器翻译", "Machine translation"),
            ("知识图谱构建", "Building knowledge graphs")),
          commands=("qa", "translate", "kg"),
          modules=("core.cases", "core.cases.schedule", "core.cases.qa", "core.cases.qa.*",
                   "core.cases.translation", "core.cases.translation.*",
                   "core.reference.qa_rewards", "core.reference.scst", "backends.translation",
                   "core.cases.kg", "core.cases.kg.*", "core.reference.kg", "backends.kg"),
          pages=("chapters/ch06_3_qa_and_translation", "chapters/ch06_3_3_knowledge_graphs")),
    )),
    Chapter(7, "工具和资源推荐", "Tools and resources", (
        S("7.1", "大规模语言模型相关工具", "Tools for large language models", (
            ("Hugging Face Transformers", "Hugging Face Transformers"),
            ("Google BERT", "Google BERT"),
            ("OpenAI GPT系列", "The OpenAI GPT series")),
          modules=("core.reference.encoder", "backends.encoder")),
        S("7.2", "强化学习相关工具", "Tools for reinforcement learning", (
            ("OpenAI Gym", "OpenAI Gym (today: Gymnasium)"),
            ("Google Dopamine", "Google Dopamine"),
            ("RLlib", "RLlib")),
          commands=("report", "sweep", "scale", "rllib"), modules=("core.scale", "core.scale.*")),
        S("7.3", "其他相关资源", "Other resources", (
            ("相关论文与综述", "Papers and surveys"),
            ("开源项目与代码实现", "Open-source projects and code"),
            ("学习资料与教程", "Learning materials and tutorials")),
          commands=("notebooks", "assignments", "grade"),
          modules=("core.tutorial", "core.exercises", "core.exercise_sets", "core.exercise_sets.*",
                   "core.coursework", "core.coursework.*"),
          pages=("chapters/ch07_3_reading_list",)),
    ), pages=("chapters/ch07_tools",)),
    Chapter(8, "总结：未来发展趋势与挑战", "Summary: future trends and challenges", (
        S("8.1", "大规模语言模型的发展趋势", "Where large language models are heading", (
            ("模型规模与性能的持续提升", "Ever larger and better models"),
            ("多模态语言模型的兴起", "The rise of multimodal language models"),
            ("语言模型的通用化与普适化", "Language models becoming general-purpose"))),
        S("8.2", "强化学习的发展趋势", "Where reinforcement learning is heading", (
            ("样本效率与泛化能力的提升", "Better sample efficiency and generalisation"),
            ("多智能体强化学习的发展", "Multi-agent reinforcement learning"),
            ("强化学习与其他领域的交叉融合", "Reinforcement learning meets other fields"))),
        S("8.3", "二者结合面临的挑战", "Challenges of the combination", (
            ("高质量交互数据的获取", "Getting high-quality interaction data"),
            ("语言模型与环境的匹配与适配", "Fitting language models to environments"),
            ("算法的可解释性与稳定性", "Interpretable and stable algorithms"))),
    ), pages=("chapters/ch08_trends",)),
    Chapter(9, "附录：常见问题与解答", "Appendix: frequently asked questions", (
        S("9.1", "大规模语言模型常见问题", "Questions about large language models", (
            ("如何选择合适的语言模型？", "How to choose a language model?"),
            ("如何进行语言模型的微调？", "How to fine-tune a language model?"),
            ("语言模型的推理速度如何优化？", "How to make inference faster?")),
          modules=("backends.generation", "core.sampling")),
        S("9.2", "强化学习常见问题", "Questions about reinforcement learning", (
            ("如何设计合适的奖励函数？", "How to design a good reward function?"),
            ("如何处理状态空间过大的问题？", "What to do when the state space is too large?"),
            ("探索与利用的平衡如何把握？", "How to balance exploration and exploitation?")),
          modules=("backends.dqn", "core.rl.dqn", "core.rl.dqn_settings", "core.rl.replay",
                   "core.reference.dqn", "core.rl.exploration", "core.envs.sparse_chain")),
        S("9.3", "二者结合的常见问题", "Questions about the combination", (
            ("如何设计语言模型与强化学习的交互方式？",
             "How should a language model and RL interact?"),
            ("如何评估语言模型在强化学习中的作用？",
             "How to evaluate what the language model contributes?"),
            ("如何权衡语言模型的生成质量与策略的优化？",
             "How to trade generation quality against policy optimisation?")),
          modules=("core.agents.lm_prior", "core.agents.pretrain"),
          pages=("chapters/ch09_3_lm_and_rl",)),
    )),
)
del S

TUTORIAL_NAME = re.compile(r"^ch(\d{2})_(\d+)_\w+$")


def chapter_page_docname(chapter: Chapter) -> str:
    """The docname of the generated page of ``chapter`` (``outline/ch04``)."""
    return f"outline/ch{chapter.number:02d}"


def tutorials_by_section(tutorial_dir: Path = REPO / "tutorials") -> dict[str, list[str]]:
    """``{"4.2": ["ch04_2_...", ...]}``: each tutorial joins section X.Y by its file name."""
    found: dict[str, list[str]] = {}
    for path in sorted(tutorial_dir.glob("ch*.py")):
        match = TUTORIAL_NAME.match(path.stem)
        if match:
            number = f"{int(match.group(1))}.{int(match.group(2))}"
            found.setdefault(number, []).append(path.stem)
    return found


def api_modules(repo: Path = REPO) -> list[str]:
    """Every API page's module name: ``core.<dotted>`` and ``backends.<mirrored file>``."""
    names = []
    for path in sorted((repo / "core").rglob("*.py")):
        parts = path.relative_to(repo).with_suffix("").parts
        if "cli" in parts or "__pycache__" in parts:
            continue  # the CLI has its own pages
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if len(parts) > 1 or parts == ("core",):
            names.append(".".join(parts))
    torch_files = {p.stem for p in (repo / "backends" / "torch").glob("*.py")}
    tf_files = {p.stem for p in (repo / "backends" / "tf").glob("*.py")}
    names += [f"backends.{n}" for n in sorted(torch_files & tf_files) if n != "__init__"]
    return [n for n in names if n != "core"]


def cli_commands() -> list[str]:
    """The top-level ``duetrl`` commands (the parser is cheap: no framework is imported)."""
    from duetrl.core.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # the one sub-command group
        return sorted(action.choices)
    return []


def place(names: list[str], patterns_of: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """Give each name to the first section whose patterns match it; "" collects the rest."""
    placed: dict[str, list[str]] = {number: [] for number in patterns_of}
    placed[""] = []
    for name in names:
        owner = next((number for number, patterns in patterns_of.items()
                      if any(fnmatch.fnmatchcase(name, p) for p in patterns)), "")
        placed[owner].append(name)
    return placed


# What the book really has for a section (computed, never declared): the tutorials that join
# it by name or name it in their opening paragraph, the chapter pages with a heading numbered
# in it, its commands and modules. A section's status is the best of these it has.
STATUSES = ("tutorial", "text", "reference", "empty")  # best first
SECTION_NUMBER = re.compile(r"(?<![\d.])(\d+)\.(\d+)(?:\.\d+)?(?![\d])")
# "Outline 3.1 (...), 9.2.1 (...) and 9.3.3 (...). A language model": up to the sentence's end
OUTLINE_MENTION = re.compile(r"\boutline\b(.*?)(?:\.(?=\s+[A-Z`*(])|\.?\s*$)",
                             re.IGNORECASE | re.DOTALL)
NUMBERED_HEADING = re.compile(r"^#{1,6}\s+(\d+)\.(\d+)(?:\.\d+)?\s", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def section_numbers() -> set[str]:
    """Every section number of the outline ("1.1" ... "9.3")."""
    return {s.number for chapter in CHAPTERS for s in chapter.sections}


def tutorial_opening(path: Path) -> str:
    """The text of a tutorial's first Markdown cell (its title and opening paragraph)."""
    cells = re.split(r"^# %%", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    markdown = next((cell for cell in cells if cell.startswith(" [markdown]")), "")
    lines = [re.sub(r"^# ?", "", line) for line in markdown.splitlines()[1:]]
    return "\n".join(lines)


def sections_named(opening: str) -> set[str]:
    """Sections a tutorial says it covers: the numbers in its "Outline ..." sentences."""
    known = section_numbers()
    found = set()
    for paragraph in re.split(r"\n\s*\n", opening)[:3]:  # the title and the first paragraphs
        for mention in OUTLINE_MENTION.finditer(paragraph):
            found |= {f"{int(m[1])}.{int(m[2])}" for m in SECTION_NUMBER.finditer(mention[1])}
    return found & known


def sections_headed(page_text: str) -> set[str]:
    """Sections a chapter page covers: those with a heading numbered X.Y or X.Y.Z on it."""
    text = FENCE.sub("", page_text)  # "# comment" lines in code are not headings
    return {f"{int(m[1])}.{int(m[2])}" for m in NUMBERED_HEADING.finditer(text)} & \
        section_numbers()


@dataclass
class Coverage:
    """What the book has for one section. ``tutorials``/``pages`` sit in its table of contents;
    ``also_tutorials``/``also_pages`` live elsewhere and cover it too."""

    tutorials: list[str] = field(default_factory=list)
    also_tutorials: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    also_pages: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``tutorial`` (runnable), ``text`` (a chapter page), ``reference`` (commands or API
        pages only) or ``empty``."""
        if self.tutorials or self.also_tutorials:
            return "tutorial"
        if self.pages or self.also_pages:
            return "text"
        return "reference" if self.commands or self.modules else "empty"


def coverage(docs: Path, tutorial_dir: Path | None = None,
             commands: dict[str, list[str]] | None = None,
             modules: dict[str, list[str]] | None = None) -> dict[str, Coverage]:
    """``{section number: Coverage}`` for every section, from the files as they are now.

    :param docs: the book's folder (its ``chapters/*.md`` are read).
    :param tutorial_dir: default ``<repo>/tutorials``.
    :param commands: placed commands (default: the real CLI's, placed by the outline).
    :param modules: placed modules (default: the real API's).
    """
    sections = [s for chapter in CHAPTERS for s in chapter.sections]
    tutorial_dir = REPO / "tutorials" if tutorial_dir is None else tutorial_dir
    if commands is None:
        commands = place(cli_commands(), {s.number: s.commands for s in sections})
    if modules is None:
        modules = place(api_modules(REPO), {s.number: s.modules for s in sections})
    found = {s.number: Coverage(commands=list(commands.get(s.number, [])),
                                modules=list(modules.get(s.number, []))) for s in sections}
    for number, stems in tutorials_by_section(tutorial_dir).items():
        if number in found:
            found[number].tutorials += stems
    for path in sorted(tutorial_dir.glob("ch*.py")):
        match = TUTORIAL_NAME.match(path.stem)
        if match:
            own = f"{int(match.group(1))}.{int(match.group(2))}"
            for number in sorted(sections_named(tutorial_opening(path)) - {own}):
                found[number].also_tutorials.append(path.stem)
    placed = {page: s.number for s in sections for page in s.pages}
    for path in sorted((docs / "chapters").glob("*.md")):
        page = f"chapters/{path.stem}"
        if page in placed:
            found[placed[page]].pages.append(page)
        for number in sorted(sections_headed(path.read_text(encoding="utf-8"))):
            if placed.get(page) != number:
                found[number].also_pages.append(page)
    return found
