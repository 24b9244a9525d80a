"""An effective Clara v4 config (v4.0 or v4.1) -> a ``monai.bundle`` config.

v4.1 writes its wiring out (``"@model"``, ``"#@model.parameters()"``); they become bundle
references (``"@train::model"``) and expressions (``"$@train::model.parameters()"``), written
with MONAI's own id constants (:mod:`.ids`). v4.0 wires
the same objects implicitly; the missing arguments are filled in here, so both eras give the
same objects. MONAI's ``ConfigParser`` then builds everything: no reference resolver of our own.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .. import better
from .. import tree as T
from ..better import Goal
from ..errors import BuildError
from ..logs import notice, notice_once
from ..paths import search_dirs
from ..values import Data
from .ids import data, expr, looks_special, ref, special_key
from .names import RENAMED_CLASSES, check_args, import_path, lookup, rename_args, resolve_class

SECTIONS = ("train", "validate")
COMPOSED = ("pre_transforms", "post_transforms")
FROM_ENGINE_PRED_LABEL = expr("monai.handlers.from_engine(['pred', 'label'])")
#: ``from_engine(['image_meta_dict'])``: MONAI 1.6 keeps the meta data on the image (MetaTensor)
META_FROM_ENGINE = re.compile(r"monai\.handlers\.from_engine\(\[\s*['\"](\w+)_meta_dict['\"]\s*\]\)")
#: Clara-era classes whose inverse (MONAI 1.x) gives numpy, which Invertd's next inverse refuses
INVERTS_TO_NUMPY = {"ToTensord": "EnsureTyped"}
#: Handlers that write files or log lines: in a DDP group only rank 0 runs them (the metric
#: savers stay on every rank: they gather all ranks' values, and rank 0 writes them)
RANK0_HANDLERS = {"CheckpointSaver", "TensorBoardStatsHandler", "TensorBoardImageHandler", "StatsHandler"}
#: Clara's ``@conf`` (the training config object) becomes this expression.
CONF_EXPR = expr("clara_hydra_conf")


class Builder:
    def __init__(self, tree: dict, *, device: str, amp: bool, config_file: str | None = None,
                 share_cache: bool = False, gpu_free_bytes: int | None = None, rank: int = 0,
                 world: int = 1, goal: Goal | None = None) -> None:
        self.tree = tree
        self.goal = goal if goal is not None else better.of_run(tree)  # which key metric value is better
        self.rank, self.world = rank, world  # a DDP rank (:mod:`.ddp`): its share of the data, its handlers
        self.gpu_free_bytes = gpu_free_bytes  # free CUDA memory: cached data goes to the GPU when it fits
        self.share_cache = share_cache  # in a sweep: trials share the cached deterministic transforms
        self.device = device
        self.amp = amp
        self.dirs = search_dirs(config_file)
        self.bundle: dict[str, Any] = {sec: {} for sec in SECTIONS}
        self.inverted: set[str] = set()  # the sections whose post transforms invert the pre transforms

    # -- references ------------------------------------------------------------------
    def has(self, sec: str, slot: str) -> bool:
        return slot in self.tree.get(sec, {})

    def reference(self, name: str, sec: str, where: str) -> str:
        """A reference (``@sec::name``) to the slot ``name``: of this section first, else the other."""
        other = "validate" if sec == "train" else "train"
        for s in (sec, other):
            if self.has(s, name):
                return ref(s, name)
        raise BuildError(f"'@{name}' names no slot of train or validate", location=where,
                         hint=f"add a '{name}' component, or fix the reference")

    def value(self, v: Any, sec: str, where: str, key: str | None = None) -> Any:
        if isinstance(v, dict):
            if any(special_key(k) for k in v):  # Clara passes such a dict as it is: data, never built
                return data(v)
            return {k: self.value(x, sec, f"{where}.{k}", k) for k, x in v.items()}
        if isinstance(v, list):
            return [self.value(x, sec, f"{where}[{i}]") for i, x in enumerate(v)]
        if not isinstance(v, str):
            return v
        if isinstance(v, Data):  # a value of environment.json: data, never code
            return literal(str(v))
        m = re.fullmatch(r"@(\w+)", v)
        if m:
            if m.group(1) == "conf":
                return CONF_EXPR
            return self.reference(m.group(1), sec, where)
        if v.startswith("#"):  # Clara's expression: "#@model.parameters()"
            code = META_FROM_ENGINE.sub(r"clara_hydra.train.compat.meta_of('\1')", v[1:])
            return expr(re.sub(r"@(\w+)", lambda mm: self.reference(mm.group(1), sec, where), code))
        if v.lstrip().startswith("lambda"):
            if key == "output_transform":  # MONAI 1.6 engines give a list of items per batch
                return expr(f"clara_hydra.train.compat.per_item({v})")
            return expr(v)
        return literal(v)

    # -- components ------------------------------------------------------------------
    def component(self, comp: dict, sec: str, where: str) -> dict:
        args = dict(comp.get("args") or {})
        if isinstance(comp.get("path"), str):
            target = comp["path"].split("#", 1)[0]
            cls = import_path(target, where, self.dirs)
            cls_name = target
        else:
            cls_name = comp["name"].split("#", 1)[0]
            if cls_name in INVERTS_TO_NUMPY and sec in self.inverted and ".pre_transforms[" in where:
                new = INVERTS_TO_NUMPY[cls_name]
                notice(f"{where}: {cls_name} inverts to numpy in MONAI today, which breaks the Invertd of the post "
                       f"transforms: using {new} (the same tensors; Invertd passes over it)")
                cls_name = new
            if cls_name in RENAMED_CLASSES:
                args.update(RENAMED_CLASSES[cls_name][1])
            target = lookup(cls_name, where)
            cls = resolve_class(target)
        for key in ("device", "sw_device"):
            value = args.get(key)
            if isinstance(value, str) and value.startswith("cuda") and self.device == "cpu":
                notice_once(f"{where}: '{key}: {value}' but CUDA is not available: using the CPU")
                args[key] = "cpu"
        args = {k: v for k, v in args.items() if not k.startswith("_")}  # Clara's "commented out" args
        args = rename_args(cls, cls_name, args, where)
        check_args(cls, cls_name, args, where)
        out: dict[str, Any] = {"_target_": target}
        for k, v in args.items():
            out[k] = self.value(v, sec, f"{where}.args.{k}", k)
        out["_clara_class_"] = cls_name  # dropped before parsing
        return out

    def build(self) -> dict:
        self.inverted = {sec for sec in SECTIONS if any(
            T.is_component(c) and T.class_name(c) == "Invertd" for c in self.tree.get(sec, {}).get("post_transforms")
            or [])}
        for sec in SECTIONS:
            for slot, val in self.tree.get(sec, {}).items():
                if slot.startswith("_"):
                    continue
                where = f"{sec}.{slot}"
                if T.is_component(val):
                    self.bundle[sec][slot] = self.component(val, sec, where)
                elif isinstance(val, list) and val and all(T.is_component(m) for m in val):
                    self.bundle[sec][slot] = [self.component(m, sec, f"{where}[{i}]") for i, m in enumerate(val)]
                elif isinstance(val, list) and not val:
                    self.bundle[sec][slot] = []
                else:
                    self.bundle[sec][slot] = self.value(val, sec, where)
        for sec in SECTIONS:
            self._wire(sec)
            if self.world > 1:
                self._distributed(sec)
        return _strip_markers(self.bundle)

    # -- v4.0's implicit wiring, and the shapes MONAI wants --------------------------------
    def _wire(self, sec: str) -> None:
        b = self.bundle[sec]
        src = self.tree.get(sec, {})
        for slot in COMPOSED:
            if isinstance(b.get(slot), list):
                b[slot] = {"_target_": "monai.transforms.Compose", "transforms": b[slot]}
        self._metrics(sec)
        if "dataset" in b and isinstance(b["dataset"], dict):
            self._dataset(sec, src["dataset"], b["dataset"])
        if isinstance(b.get("dataloader"), dict):
            b["dataloader"].setdefault("dataset", ref(sec, "dataset"))
            self._fast_loader(sec, b)
        if sec == "train" and isinstance(b.get("optimizer"), dict):
            b["optimizer"].setdefault("params", expr(self.reference("model", sec, "train.optimizer")
                                                     + ".parameters()"))
        if isinstance(b.get("lr_scheduler"), dict):
            b["lr_scheduler"].setdefault("optimizer", self.reference("optimizer", sec, f"{sec}.lr_scheduler"))
        for i, h in enumerate(b.get("handlers") or []):
            self._handler(sec, h, f"{sec}.handlers[{i}]")
        if sec == "train" and isinstance(b.get("trainer"), dict):
            self._engine(sec, b["trainer"], {
                "train_data_loader": "dataloader", "network": "model", "loss_function": "loss",
                "optimizer": "optimizer", "inferer": "inferer", "postprocessing": "post_transforms",
                "key_train_metric": "key_metric", "additional_metrics": "additional_metrics",
                "train_handlers": "handlers"})
        if sec == "validate" and isinstance(b.get("evaluator"), dict):
            self._engine(sec, b["evaluator"], {
                "val_data_loader": "dataloader", "network": "model", "inferer": "inferer",
                "postprocessing": "post_transforms", "key_val_metric": "key_metric",
                "additional_metrics": "additional_metrics", "val_handlers": "handlers"})

    def _distributed(self, sec: str) -> None:
        """A DDP rank: its share of the section's data (MONAI's DistributedSampler: training
        shuffled as the config asks, every rank the same number of batches; validation each case
        once), checkpoints loaded to the CPU first, and on ranks other than 0 no handler that
        writes files or logs (rank 0 writes them)."""
        b = self.bundle[sec]
        dl = b.get("dataloader")
        data = b["dataset"].get("data") if isinstance(b.get("dataset"), dict) else None
        if isinstance(data, list) and len(data) < self.world:
            raise BuildError(f"{len(data)} case(s) for {self.world} training processes: each process needs at least "
                             f"one", location=f"{sec}.dataset",
                             hint="train in fewer processes (CLARA_HYDRA_NPROC, the worker's GPUs) or give the "
                                  "datalist more cases")
        if isinstance(dl, dict) and "sampler" in dl:
            notice(f"{sec}.dataloader: the config's own sampler is kept, so every one of the {self.world} "
                   f"processes reads all of the data (remove it to give each process its share)")
        elif isinstance(dl, dict):
            shuffle = dl.get("shuffle", False)
            dl["shuffle"] = False  # (the sampler shuffles)
            dl["sampler"] = {"_target_": "monai.data.DistributedSampler", "dataset": ref(sec, "dataloader", "dataset"),
                             "shuffle": shuffle, "even_divisible": sec == "train"}
        if not isinstance(b.get("handlers"), list):
            return
        classes = [str(h.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(h, dict) else "" for h in b["handlers"]]
        for h, cls in zip(b["handlers"], classes):  # (a checkpoint saved on GPU 0 would load there in every process)
            if cls.endswith("CheckpointLoader"):
                h.setdefault("map_location", "cpu")
        if self.rank > 0:
            b["handlers"] = [h for h, cls in zip(b["handlers"], classes) if cls not in RANK0_HANDLERS]

    def _metric_dict(self, comps: list[tuple[dict, dict]]) -> dict:
        out = {}
        for built, written in comps:
            built.setdefault("output_transform", FROM_ENGINE_PRED_LABEL)
            label = written.get("log_label") or T.class_name(written)
            out[label] = built
        return out

    def _metrics(self, sec: str) -> None:
        b, src = self.bundle[sec], self.tree.get(sec, {})
        if isinstance(b.get("key_metric"), dict) and "_target_" in b["key_metric"]:
            b["key_metric"] = self._metric_dict([(b["key_metric"], src["key_metric"])])
        if isinstance(b.get("additional_metrics"), list):
            b["additional_metrics"] = self._metric_dict(list(zip(b["additional_metrics"], src["additional_metrics"])))
        if isinstance(b.get("metrics"), list):  # v4.0: one list, is_key_metric marks the key one
            pairs = list(zip(b.pop("metrics"), src["metrics"]))
            keyed = [p for p in pairs if p[1].get("is_key_metric") is True] or pairs[:1]
            b["key_metric"] = self._metric_dict(keyed[:1])
            rest = [p for p in pairs if p is not keyed[0]]
            if rest:
                b["additional_metrics"] = self._metric_dict(rest)

    def _dataset(self, sec: str, written: dict, built: dict) -> None:
        from .data import load_datalist
        if built.get("_target_") == "monai.data.Dataset":
            notice(f"{sec}.dataset: caching the deterministic transforms (CacheDataset instead of Dataset)")
            built["_target_"] = "monai.data.CacheDataset"
            built.setdefault("cache_rate", 1.0)
        if str(built.get("_target_", "")).endswith("CacheDataset") and "progress" not in built:
            import sys
            built["progress"] = sys.stderr.isatty()  # no tqdm bars in log files
        if "data" not in built and "data_list_file_path" in written:
            data = load_datalist(written["data_list_file_path"], written.get("data_file_base_dir"),
                                 written.get("data_list_key", "training" if sec == "train" else "validation"),
                                 f"{sec}.dataset", written.get("is_segmentation", True))
            built["data"] = [{k: literal(v) if isinstance(v, str) else v for k, v in item.items()}
                             if isinstance(item, dict) else item for item in data]
        if "data" not in built:
            raise BuildError("the dataset has no data", location=f"{sec}.dataset",
                             hint="give data_list_file_path (and data_file_base_dir, data_list_key)")
        if "transform" not in built and "pre_transforms" in self.bundle[sec]:
            built["transform"] = ref(sec, "pre_transforms")
        target = str(built.get("_target_", ""))
        if self.share_cache and target in ("monai.data.CacheDataset", "monai.data.PersistentDataset") \
                and built.get("transform") == ref(sec, "pre_transforms"):
            from .cache import prefix_key
            chain = (self.bundle[sec].get("pre_transforms") or {}).get("transforms", [])
            extra = {k: v for k, v in built.items() if k not in ("data", "transform", "_target_")}
            extra["_section"] = sec  # train and validate never share one dataset object
            built["key"] = prefix_key(chain, built["data"], extra)
            built["dataset_class"] = target
            built["_target_"] = "clara_hydra.train.cache.shared_dataset"

    def _fast_loader(self, sec: str, b: dict) -> None:
        """MONAI's fast-training recipe where it is safe: with a cached dataset on CUDA, a
        ThreadDataLoader (the random transforms run in a thread, no worker processes)."""
        ds, dl = b.get("dataset"), b["dataloader"]
        target = str(ds.get("dataset_class") or ds.get("_target_", "")) if isinstance(ds, dict) else ""
        cached = target.rsplit(".", 1)[-1] in ("CacheDataset", "SmartCacheDataset", "PersistentDataset",
                                               "CacheNTransDataset")
        if self.device == "cuda" and cached and dl.get("_target_") == "monai.data.DataLoader":
            dl["_target_"] = "monai.data.ThreadDataLoader"
            dl["num_workers"] = 0
            notice(f"{sec}.dataloader: cached data on CUDA: using ThreadDataLoader")
        from ..sweep.protocol import in_worker
        on_disk = self.share_cache and in_worker()  # a worker: the cache is shared on disk
        if self.device == "cuda" and cached and not on_disk and self.gpu_free_bytes and isinstance(ds, dict) \
                and dl.get("_target_", "").endswith("ThreadDataLoader") and isinstance(ds.get("data"), list):
            self._cache_on_gpu(sec, ds, self.gpu_free_bytes)

    def _cache_on_gpu(self, sec: str, ds: dict, free_bytes: int) -> None:
        """Keep the cached (deterministic) part of the data on the GPU when it fits in half of the
        free memory: EnsureTyped(device=cuda) right after the deterministic prefix."""
        from .cache import first_random_index
        data = ds["data"]
        keys = [k for k, v in (data[0] if data else {}).items() if isinstance(v, str)]
        estimate = estimate_bytes(data, keys)
        chain = (self.bundle[sec].get("pre_transforms") or {}).get("transforms")
        if not keys or estimate is None or chain is None or ds.get("transform") != ref(sec, "pre_transforms"):
            return
        if estimate > free_bytes // 2:
            notice(f"{sec}.dataset: cached data (~{estimate / 2**30:.1f} GiB) does not fit in half of the free GPU "
                   f"memory: kept in host memory")
            return
        at = first_random_index(chain)
        chain.insert(at, {"_target_": "monai.transforms.EnsureTyped", "keys": keys, "device": "cuda",
                          "track_meta": True})
        notice(f"{sec}.dataset: keeping the cached data on the GPU (~{estimate / 2**20:.0f} MiB)")

    def _handler(self, sec: str, h: dict, where: str) -> None:
        cls = h.get("_clara_class_", "")
        if cls == "LrScheduleHandler":
            h.setdefault("lr_scheduler", self.reference("lr_scheduler", sec, where))
        elif cls == "ValidationHandler":
            h.setdefault("validator", self.reference("evaluator", sec, where))
        elif cls == "CheckpointSaver" and h.get("save_key_metric"):
            negative = not self.goal.maximize  # the best checkpoint is the best key metric in the run's direction
            if "key_metric_negative_sign" in h and bool(h["key_metric_negative_sign"]) != negative:
                notice(f"{where}: key_metric_negative_sign={h['key_metric_negative_sign']} would keep the worst "
                       f"checkpoint: the run's direction is {self.goal.direction} ({self.goal.why}), so it is "
                       f"{negative}")
            h["key_metric_negative_sign"] = negative
        elif cls == "CheckpointLoader" and isinstance(h.get("load_path"), str) and h["load_path"][:1] not in "#$@%":
            if not os.path.isfile(h["load_path"]):
                raise BuildError(f"the checkpoint to load is not there: {os.path.abspath(h['load_path'])}",
                                 location=where, hint="train first, or set MMAR_CKPT=PATH (a relative path in "
                                                      "environment.json is the MMAR's), or dont_load_ckpt_model=true")
            if sec == "train":  # finetune.sh: say which weights the training starts from
                notice_once(f"{where}: finetuning: training starts from the weights of "
                            f"{os.path.abspath(h['load_path'])}")
        for key in ("load_dict", "save_dict"):
            if key not in h:
                continue
            value = h[key]
            if isinstance(value, list):
                value = {name: f"@{name}" for name in value}  # Clara's names: "@model"
            kept = {}
            for name, target in value.items():
                if target == CONF_EXPR or target == "@train_conf" or name == "train_conf":
                    notice(f"{where}: '{name}' (Clara's training config) is not saved in checkpoints; the "
                           f"resolved config is in the run folder")
                    continue
                if isinstance(target, str) and re.fullmatch(r"@\w+", target):
                    target = self.reference(target[1:], sec, where)
                kept[name] = target
            h[key] = kept

    def _engine(self, sec: str, engine: dict, wiring: dict) -> None:
        for arg, slot in wiring.items():
            if arg in engine:
                continue
            if slot == "model" and sec == "validate" and not self.has("validate", "model"):
                engine[arg] = ref("train", "model")
            elif self.has(sec, slot) or (slot in ("key_metric", "additional_metrics") and slot in self.bundle[sec]):
                engine[arg] = ref(sec, slot)
        if sec == "train" and "decollate" not in engine and not any(
                k in engine for k in ("postprocessing", "key_train_metric", "additional_metrics")):
            engine["decollate"] = False  # nothing reads per-item outputs: skip splitting every batch
        if sec == "train" and str(engine.get("_target_", "")).rsplit(".", 1)[-1] == "SupervisedTrainer":
            engine.setdefault("optim_set_to_none", True)  # PyTorch's own default: no memset of every gradient
        engine["device"] = expr(f"torch.device('{self.device}')")  # a written "cuda" was noticed with its args
        if self.device == "cuda":
            engine.setdefault("non_blocking", True)
        if engine.get("amp") and not self.amp:
            notice_once(f"{sec}: AMP needs CUDA; training in full precision on the CPU")
        if "amp" in engine or self.amp:
            engine["amp"] = bool(engine.get("amp")) and self.amp


def literal(text: str) -> str:
    """A plain Clara string as MONAI's ConfigParser must see it to keep it as written: one that
    MONAI would read as code (``$...``), a macro (``%...``), a reference (``@...``) or an id
    (``::``, ``@#``) becomes an expression that gives back exactly the string."""
    if looks_special(text):
        return expr(f"bytes.fromhex('{text.encode('utf-8').hex()}').decode('utf-8')")
    return text


def estimate_bytes(data: list, keys: list[str]) -> int | None:
    """Uncompressed float32 size of the data list's images, from their headers (None: unknown)."""
    total = 0
    try:
        import nibabel as nib
        for item in data:
            for k in keys:
                shape = nib.load(item[k]).header.get_data_shape()  # type: ignore[attr-defined]
                n = 1
                for d in shape:
                    n *= int(d)
                total += 4 * n
    except Exception:
        return None
    return total


def _strip_markers(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_markers(v) for k, v in node.items() if k != "_clara_class_"}
    if isinstance(node, list):
        return [_strip_markers(v) for v in node]
    return node
