"""medseg_fast.nnunet against stock nnU-Net v2 on a tiny phantom dataset in nnU-Net's raw layout:
fingerprint -> stock ExperimentPlanner and our MedsegPlanner -> preprocessing of every case by the stock
DefaultPreprocessor and by ours (arrays within 1e-4, segmentations equal), then the stock nnUNetPredictor
and ours on the same (randomly initialised) network: logits, labels and the export step."""

from __future__ import annotations

import json
from multiprocessing.pool import ThreadPool
from types import SimpleNamespace

import numpy as np
import pytest

nnunetv2 = pytest.importorskip("nnunetv2")
torch = pytest.importorskip("torch")

DATASET_ID = 901


class _Context:
    """multiprocessing.get_context() stand-in whose Pool is a ThreadPool: nnU-Net's spawn pools run in
    this process (one thread), so the test pays no interpreter start-up per worker."""

    Pool = ThreadPool


@pytest.fixture(scope="module")
def phantom_dataset(tmp_path_factory):
    from medseg_fast.data.phantom import PhantomConfig, make_dataset

    root = tmp_path_factory.mktemp("nnunet")
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res"), "nnUNet_def_n_proc": "1"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    import nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor as fe

    mp.setattr(fe, "multiprocessing", SimpleNamespace(get_context=lambda *_: _Context))
    # anisotropic (6 / 1.6 > 3: nnU-Net's separate z), spacing jittered per case (so cases are resampled)
    config = PhantomConfig(fov_mm=(60.0, 80.0, 80.0), spacing=(6.0, 1.6, 1.6), spacing_jitter=0.1)
    folder = make_dataset(root / "raw" / f"Dataset{DATASET_ID:03d}_Phantom", n_train=3, n_test=1, seed=3,
                          config=config)
    fe.DatasetFingerprintExtractor(DATASET_ID, num_processes=1).run()
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner

    from medseg_fast.nnunet import MedsegPlanner

    ExperimentPlanner(DATASET_ID).plan_experiment()
    MedsegPlanner(DATASET_ID).plan_experiment()
    pre = root / "pre" / f"Dataset{DATASET_ID:03d}_Phantom"
    yield SimpleNamespace(raw=folder, pre=pre, stock_plans=pre / "nnUNetPlans.json", our_plans=pre / "MedsegPlans.json",
                          dataset_json=json.loads((folder / "dataset.json").read_text()))
    mp.undo()


def _managers(plans_file, dataset_json):
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    pm = PlansManager(str(plans_file))
    cm = pm.get_configuration("3d_fullres")
    return pm, cm, pm.get_label_manager(dataset_json)


def test_planner_writes_our_names_and_same_plan(phantom_dataset):
    stock = json.loads(phantom_dataset.stock_plans.read_text())["configurations"]["3d_fullres"]
    ours = json.loads(phantom_dataset.our_plans.read_text())["configurations"]["3d_fullres"]
    assert ours["resampling_fn_data"] == "medseg_resample_data_or_seg_to_shape"
    assert ours["resampling_fn_probabilities"] == "medseg_resample_data_or_seg_to_shape"
    assert ours["normalization_schemes"] == ["MedsegCTNormalization"]
    assert ours["preprocessor_name"] == "MedsegPreprocessor"
    for key in ("spacing", "patch_size", "architecture", "resampling_fn_data_kwargs", "use_mask_for_norm"):
        assert ours[key] == stock[key], key
    # nnU-Net itself resolves every name of our plans (enable() is on once medseg_fast.nnunet is imported)
    from medseg_fast.nnunet import MedsegPreprocessor, normalization, resampling

    pm, cm, _ = _managers(phantom_dataset.our_plans, phantom_dataset.dataset_json)
    assert cm.preprocessor_class is MedsegPreprocessor
    assert cm.resampling_fn_data.func is resampling.resample_data_or_seg_to_shape
    assert cm.resampling_fn_probabilities.func is resampling.resample_data_or_seg_to_shape
    assert normalization.MedsegCTNormalization.__name__ == cm.normalization_schemes[0]


def test_preprocessing_matches_stock(phantom_dataset):
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    from medseg_fast.nnunet import MedsegPreprocessor

    ds = phantom_dataset
    stock_pm, stock_cm, _ = _managers(ds.stock_plans, ds.dataset_json)
    our_pm, our_cm, _ = _managers(ds.our_plans, ds.dataset_json)
    for entry in ds.dataset_json["training"]:
        image, seg = str(ds.raw / entry["image"]), str(ds.raw / entry["label"])
        d0, s0, p0 = DefaultPreprocessor(verbose=False).run_case([image], seg, stock_pm, stock_cm, ds.dataset_json)
        d1, s1, p1 = MedsegPreprocessor(verbose=False).run_case([image], seg, our_pm, our_cm, ds.dataset_json)
        assert d0.shape == d1.shape and d1.dtype == d0.dtype
        assert np.max(np.abs(d0 - d1)) <= 1e-4 * max(1.0, float(np.max(np.abs(d0))))
        np.testing.assert_array_equal(s1, s0)
        assert p0["shape_after_cropping_and_before_resampling"] == p1["shape_after_cropping_and_before_resampling"]


def _network(cm, label_manager, seed=0):
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    torch.manual_seed(seed)
    net = get_network_from_plans(cm.network_arch_class_name, cm.network_arch_init_kwargs,
                                 cm.network_arch_init_kwargs_req_import, 1, label_manager.num_segmentation_heads,
                                 allow_init=True, deep_supervision=False)
    with torch.no_grad():   # "briefly initialised": spread the class scores so labels are not near-ties everywhere
        last = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)][-1]
        last.weight.mul_(40.0)
        last.bias.copy_(torch.linspace(-1.0, 1.0, last.bias.numel()))
    return net.eval()


def test_predictor_matches_stock(phantom_dataset):
    from medseg_fast.data.phantom import PhantomConfig, make_phantom
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor as Stock

    from medseg_fast.nnunet import nnUNetPredictor

    ds = phantom_dataset
    pm, cm, lm = _managers(ds.stock_plans, ds.dataset_json)
    our_pm, our_cm, _ = _managers(ds.our_plans, ds.dataset_json)
    net = _network(cm, lm)
    params = [{k: v.clone() for k, v in net.state_dict().items()}]
    kw = dict(tile_step_size=0.5, use_gaussian=True, use_mirroring=True, perform_everything_on_device=False,
              device=torch.device("cpu"), allow_tqdm=False)
    stock, ours = Stock(**kw), nnUNetPredictor(**kw)
    stock.manual_initialization(net, pm, cm, params, ds.dataset_json, "nnUNetTrainer", (0, 1, 2))
    ours.manual_initialization(_network(cm, lm), our_pm, our_cm, params, ds.dataset_json, "nnUNetTrainer", (0, 1, 2))
    ct, _, meta = make_phantom(77, PhantomConfig(fov_mm=(60.0, 80.0, 80.0), spacing=(6.4, 1.5, 1.7)))
    image = ct[None].astype(np.float32)
    props = {"spacing": list(meta.spacing)}

    # logits on the same preprocessed data: sliding window positions, Gaussian and mirroring agree
    from nnunetv2.inference.data_iterators import PreprocessAdapterFromNpy

    dct = next(PreprocessAdapterFromNpy([image], [None], [dict(props)], [None], pm, ds.dataset_json, cm,
                                        num_threads_in_multithreaded=1))
    l_stock = stock.predict_logits_from_preprocessed_data(dct["data"]).float()
    l_ours = ours.predict_logits_from_preprocessed_data(dct["data"]).float()
    # nnU-Net blends in float16 (Gaussian scaled to 10): its own rounding is ~2^-11 of the accumulated sums
    scale = float(l_stock.abs().max())
    err = (l_stock - l_ours).abs()
    assert float(err.max()) <= 8e-3 * scale and float(err.mean()) <= 1e-3 * scale

    # export step on the same float32 logits: fused vs stock (skimage float64), equal except near-ties
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape

    from medseg_fast.nnunet import convert_predicted_logits_to_segmentation_with_correct_shape as fused

    seg_stock = convert_predicted_logits_to_segmentation_with_correct_shape(l_ours.numpy(), pm, cm, lm,
                                                                           dct["data_properties"])
    seg_ours = fused(l_ours.numpy(), our_pm, our_cm, lm, dct["data_properties"])
    assert seg_ours.shape == seg_stock.shape == ct.shape and seg_ours.dtype == seg_stock.dtype
    assert np.mean(seg_ours == seg_stock) >= 0.9995

    # end to end on the raw array
    labels_stock = stock.predict_single_npy_array(image, dict(props))
    labels_ours = ours.predict_single_npy_array(image, dict(props))
    assert labels_ours.shape == ct.shape
    assert len(np.unique(labels_stock)) >= 2
    assert np.mean(labels_ours == labels_stock) >= 0.995
