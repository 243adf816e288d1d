"""``inspector kb add|list|show|search|remove|import-mvtec|import-mmad``: manage the knowledge base."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspector_agent.cli import at_least
from inspector_agent.settings import Settings
from inspector_agent.wording import counted

# The store pulls in Chroma and torch: it is imported when a command runs, so that
# `inspector --help` and input errors answer at once.
if TYPE_CHECKING:
    from tqdm import tqdm

    from inspector_agent.kb import IngestReport, KnowledgeBase


class _Bars:
    """A tqdm bar per ingestion stage (chunks, references, calibration), on stderr."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            self.close()  # one stage at a time keeps the terminal tidy
            bar = self.bars[stage] = tqdm(
                total=total, desc=f"{self.label} {stage}", unit="it", leave=False
            )
        bar.update(done - bar.n)

    def close(self) -> None:
        """Close every open bar."""
        for bar in self.bars.values():
            bar.close()


def _add(kb: KnowledgeBase, folder: Path, replace: bool) -> IngestReport:
    bars = _Bars(folder.name)
    try:
        report = kb.add_product(folder, replace=replace, progress=bars)
    finally:
        bars.close()
    print(report.summary())
    return report


def _with_kb(
    action: Callable[[argparse.Namespace, KnowledgeBase], int],
) -> Callable[[argparse.Namespace, Settings], int]:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        from inspector_agent.kb import KnowledgeBase

        kb = KnowledgeBase(settings)
        try:
            return action(args, kb)
        finally:
            kb.close()

    return handler


def cmd_add(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """Ingest product folders."""
    for folder in args.folders:
        _add(kb, Path(folder), args.replace)
    return 0


def cmd_list(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """One line per product."""
    products = kb.list_products()
    for product in products:
        kinds = counted(len(product.defects), "defect type")
        references = counted(len(kb.reference_set(product.id).paths), "reference")
        print(f"{product.id:28} {product.name}  ({kinds}, {references})")
    if not products:
        print("no products yet: inspector kb add FOLDER")
    return 0


def cmd_show(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """A product's manifest, folder and calibration (each reference's leave-one-out score)."""
    from inspector_agent.grounding.memory_bank import reference_order
    from inspector_agent.kb.ingest import coverage_advice

    product = kb.get_product(args.product)
    refs = kb.reference_set(args.product)
    print(product.to_yaml().rstrip())
    print(f"folder: {kb.product_dir(args.product)}")
    print(f"references: {len(refs.paths)}")
    if refs.calibration:
        cal = refs.calibration
        print(
            f"calibration: {cal.get('mode')} matching, image threshold {cal.get('image_threshold', 0):.3f}"
        )
        scores = cal.get("reference_scores") or []
        if len(scores) == len(refs.paths):  # how far each good image is from the others
            for index, (path, score) in enumerate(
                zip(reference_order(refs.paths), scores, strict=True)
            ):
                aside = "  (set aside)" if index == cal.get("set_aside") else ""
                print(f"  {path.name}: leave-one-out score {score:.3f}{aside}")
        if advice := coverage_advice(cal, refs.paths):
            print(f"note: {advice}")
    return 0


def cmd_search(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """Passages that answer a question, with citations."""
    passages = kb.search(args.query, product_id=args.product, k=args.k)
    for passage in passages:
        print(f"[{passage.score:.2f}] {passage.citation()}")
        print("    " + passage.text.replace("\n", "\n    "))
    if not passages:
        print("no passages found")
    return 0


def cmd_remove(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """Remove a product and everything of it."""
    kb.remove_product(args.product)
    print(f"removed {args.product}")
    return 0


def cmd_import_mvtec(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """Import an MVTec-AD category folder as a product."""
    from inspector_agent.kb.importers import import_folders, mvtec_product_folder

    path = Path(args.path)
    import_folders(
        lambda out: [mvtec_product_folder(path, args.product, out, args.max_references)],
        lambda folder: _add(kb, folder, args.replace),
    )
    return 0


def cmd_import_mmad(args: argparse.Namespace, kb: KnowledgeBase) -> int:
    """Import MMAD's domain_knowledge.json as one product per category."""
    from inspector_agent.kb.importers import import_folders, mmad_product_folders

    reports: list[Any] = import_folders(
        lambda out: mmad_product_folders(Path(args.json), out),
        lambda folder: _add(kb, folder, args.replace),
    )
    print(f"imported {len(reports)} products")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kb`` and its subcommands to the ``inspector`` parser."""
    kb = subparsers.add_parser("kb", help="manage products, specs and reference images")
    sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="ingest product folders (manifest.yaml, specs, references/)")
    add.add_argument("folders", nargs="+", metavar="FOLDER")
    add.add_argument(
        "--replace", action="store_true", help="replace a different product with the same id"
    )
    add.set_defaults(func=_with_kb(cmd_add))
    sub.add_parser("list", help="list products").set_defaults(func=_with_kb(cmd_list))
    show = sub.add_parser("show", help="show a product")
    show.add_argument("product", metavar="ID")
    show.set_defaults(func=_with_kb(cmd_show))
    search = sub.add_parser("search", help="search the specs")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--product", metavar="ID")
    search.add_argument("-k", type=at_least(1), default=5, help="passages to show (default 5)")
    search.set_defaults(func=_with_kb(cmd_search))
    remove = sub.add_parser("remove", help="remove a product")
    remove.add_argument("product", metavar="ID")
    remove.set_defaults(func=_with_kb(cmd_remove))
    mvtec = sub.add_parser("import-mvtec", help="import an MVTec-AD category folder as a product")
    mvtec.add_argument("path", metavar="PATH")
    mvtec.add_argument("--product", required=True, metavar="ID")
    mvtec.add_argument(
        "--max-references", type=at_least(1), default=32, help="good images kept (default 32)"
    )
    mvtec.add_argument("--replace", action="store_true")
    mvtec.set_defaults(func=_with_kb(cmd_import_mvtec))
    mmad = sub.add_parser(
        "import-mmad", help="import MMAD domain_knowledge.json (one product per category)"
    )
    mmad.add_argument("json", metavar="JSON")
    mmad.add_argument("--replace", action="store_true")
    mmad.set_defaults(func=_with_kb(cmd_import_mmad))
