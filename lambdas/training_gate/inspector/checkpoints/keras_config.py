"""Which Keras objects a model's configuration may name: the gate's own allowlist, kept as data.

Keras rebuilds a model by deserializing every `{module, class_name, config, registered_name}` in its
configuration, importing `module` and taking `class_name` from it (CVE-2025-1550 reached arbitrary
functions that way), and a Lambda layer carries Python bytecode that runs (`safe_mode` guards only the
`.keras` format, not `.h5`: CVE-2025-9905). So every object anywhere in the configuration (layers,
nested models, RNN cells, wrappers, initializers, regularizers, constraints, the optimizer, losses and
metrics) must be a class of this list, from a Keras module, with no registered name of its own (which is
how classes outside Keras are saved). Functions (activations, losses) must be Keras's by name. Lambda,
TFSMLayer (loads a SavedModel), TorchModuleWrapper (a pickled torch module), JaxLayer and FlaxLayer
(foreign code) are refused by name, as are lookup layers that can read a vocabulary file from a path.
"""

from __future__ import annotations

from typing import Any

from training_gate.inspector.checkpoints.errors import Reason, refuse

LAYERS = frozenset(
    """
Activation ActivityRegularization AdaptiveAveragePooling1D AdaptiveAveragePooling2D AdaptiveAveragePooling3D
AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D Add AdditiveAttention AlphaDropout Attention
AugMix AutoContrast Average AveragePooling1D AveragePooling2D AveragePooling3D AvgPool1D AvgPool2D AvgPool3D
BatchNormalization Bidirectional CategoryEncoding CenterCrop Concatenate ContrastLimitedAdaptiveHistogramEqualization
Conv1D Conv1DTranspose Conv2D Conv2DTranspose Conv3D Conv3DTranspose ConvLSTM1D ConvLSTM2D ConvLSTM3D Convolution1D
Convolution1DTranspose Convolution2D Convolution2DTranspose Convolution3D Convolution3DTranspose Cropping1D
Cropping2D Cropping3D CutMix Dense DepthwiseConv1D DepthwiseConv2D Discretization Dot Dropout ELU EinsumDense
Embedding Equalization Flatten GRU GRUCell GaussianDropout GaussianNoise GlobalAveragePooling1D
GlobalAveragePooling2D GlobalAveragePooling3D GlobalAvgPool1D GlobalAvgPool2D GlobalAvgPool3D GlobalMaxPool1D
GlobalMaxPool2D GlobalMaxPool3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D GroupNormalization
GroupQueryAttention HashedCrossing Hashing Identity InputLayer LSTM LSTMCell LayerNormalization LeakyReLU Masking
MaxNumBoundingBoxes MaxPool1D MaxPool2D MaxPool3D MaxPooling1D MaxPooling2D MaxPooling3D Maximum MelSpectrogram
Minimum MixUp MultiHeadAttention Multiply Normalization PReLU Permute Pipeline RMSNormalization RNN RandAugment
RandomBrightness RandomColorDegeneration RandomColorJitter RandomContrast RandomCrop RandomElasticTransform
RandomErasing RandomFlip RandomGaussianBlur RandomGrayscale RandomHue RandomInvert RandomPerspective
RandomPosterization RandomRotation RandomSaturation RandomSharpness RandomShear RandomTranslation RandomZoom ReLU
RepeatVector Rescaling Reshape Resizing ReversibleEmbedding STFTSpectrogram SeparableConv1D SeparableConv2D
SeparableConvolution1D SeparableConvolution2D SimpleRNN SimpleRNNCell Softmax Solarization SpatialDropout1D
SpatialDropout2D SpatialDropout3D SpectralNormalization StackedRNNCells Subtract TimeDistributed UnitNormalization
UpSampling1D UpSampling2D UpSampling3D ZeroPadding1D ZeroPadding2D ZeroPadding3D
LocallyConnected1D LocallyConnected2D RandomHeight RandomWidth ThresholdedReLU
StringLookup IntegerLookup TextVectorization
Sequential Functional Model __keras_tensor__
""".split()
)
OTHERS = frozenset(
    """
Constant GlorotNormal GlorotUniform HeNormal HeUniform IdentityInitializer LecunNormal LecunUniform Ones
Orthogonal OrthogonalInitializer RandomNormal RandomUniform STFT STFTInitializer TruncatedNormal VarianceScaling
Zeros L1 L1L2 L2 OrthogonalRegularizer MaxNorm MinMaxNorm NonNeg UnitNorm
Adadelta Adafactor Adagrad Adam AdamW Adamax Ftrl Lamb Lion LossScaleOptimizer Nadam RMSprop SGD
CosineDecay CosineDecayRestarts ExponentialDecay InverseTimeDecay PiecewiseConstantDecay PolynomialDecay
BinaryCrossentropy BinaryFocalCrossentropy CTC CategoricalCrossentropy CategoricalFocalCrossentropy
CategoricalGeneralizedCrossEntropy CategoricalHinge Circle CosineSimilarity Dice Hinge Huber KLDivergence LogCosh
MeanAbsoluteError MeanAbsolutePercentageError MeanSquaredError MeanSquaredLogarithmicError Poisson
SparseCategoricalCrossentropy SquaredHinge Tversky AUC Accuracy BinaryAccuracy BinaryIoU CategoricalAccuracy
ConcordanceCorrelation F1Score FBetaScore FalseNegatives FalsePositives IoU LogCoshError Mean MeanIoU
OneHotIoU OneHotMeanIoU PearsonCorrelation Precision PrecisionAtRecall R2Score Recall RecallAtPrecision
RootMeanSquaredError SensitivityAtSpecificity SparseCategoricalAccuracy SparseTopKCategoricalAccuracy
SpecificityAtSensitivity Sum TopKCategoricalAccuracy TrueNegatives TruePositives
DTypePolicy FloatDTypePolicy Policy InputSpec MeanMetricWrapper TensorShape TypeSpec __tuple__
""".split()
)
FUNCTIONS = frozenset(
    """
celu elu exponential gelu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh leaky_relu linear
log_sigmoid log_softmax mish relu relu6 selu sigmoid silu soft_shrink softmax softplus softsign sparse_plus
sparse_sigmoid sparsemax squareplus swish tanh tanh_shrink threshold
binary_crossentropy binary_focal_crossentropy categorical_crossentropy categorical_focal_crossentropy
categorical_hinge cosine_similarity hinge huber kl_divergence log_cosh mean_absolute_error
mean_absolute_percentage_error mean_squared_error mean_squared_logarithmic_error poisson
sparse_categorical_crossentropy squared_hinge binary_accuracy categorical_accuracy sparse_categorical_accuracy
sparse_top_k_categorical_accuracy top_k_categorical_accuracy accuracy acc mse mae mape msle
""".split()
)
MODULES = frozenset(
    {
        "keras",
        "keras.layers",
        "keras.initializers",
        "keras.regularizers",
        "keras.constraints",
        "keras.optimizers",
        "keras.optimizers.schedules",
        "keras.losses",
        "keras.metrics",
        "keras.activations",
        "keras.dtype_policies",
        "keras.models",
        "keras.src.models.functional",
        "keras.src.models.sequential",
        "keras.src.models.model",
        "keras.src.engine.functional",
        "keras.src.engine.sequential",
        "keras.src.engine.training",
        "keras.engine.functional",
        "keras.engine.sequential",
        "keras.engine.training",
    }
)
REFUSED = {
    "Lambda": "a Lambda layer (its Python bytecode runs when the model loads)",
    "__lambda__": "a serialized Python lambda (its bytecode runs when the model loads)",
    "TFSMLayer": "a TFSMLayer (it loads a TensorFlow SavedModel from a path)",
    "TorchModuleWrapper": "a TorchModuleWrapper (a pickled torch module runs when the model loads)",
    "JaxLayer": "a JaxLayer (foreign code)",
    "FlaxLayer": "a FlaxLayer (foreign code)",
    "DenseFeatures": "a DenseFeatures layer (feature columns read vocabulary files)",
}
# Keras 3 saves an operation of a functional model (`keras.ops.multiply(x, 2)`) as a node of its module:
# `{"module": "keras.src.ops.numpy", "class_name": "Multiply", "registered_name": "Multiply"}`. These are
# keras 3.15's Operation classes of each module, minus those that take a function (Cond, Map, Scan,
# Switch, WhileLoop, ForiLoop, VectorizedMap, AssociativeScan, JVP): a function in a configuration is
# code.
_OPS_TEXT = {
    "keras.src.ops.numpy": """
Abs Absolute Add All AllClose Amax Amin Angle Any Append Arange Arccos Arccosh Arcsin Arcsinh Arctan Arctan2
Arctanh Argmax Argmin Argpartition Argsort Array ArraySplit Average Bincount BitwiseAnd BitwiseInvert
BitwiseLeftShift BitwiseNot BitwiseOr BitwiseRightShift BitwiseXor BroadcastTo Cbrt Ceil Clip Concatenate Conj
Conjugate Copy Corrcoef Correlate Cos Cosh CountNonzero Cross Cumprod Cumsum Deg2rad Diag Diagflat Diagonal
Diff Digitize Divide DivideNoNan Dot Dsplit Dstack Einsum EmptyLike Equal Exp Exp2 ExpandDims Expm1 Fabs Flip
Fliplr Flipud Floor FloorDivide Fmax Fmin Fmod Full FullLike Gcd Geomspace GetItem Greater GreaterEqual
Heaviside Histogram Hsplit Hstack Hypot I0 Imag Inner IsIn Isclose Isfinite Isinf Isnan Isneginf Isposinf
Isreal Kron Lcm Ldexp LeftShift Less LessEqual Linspace Log Log10 Log1p Log2 Logaddexp Logaddexp2 LogicalAnd
LogicalNot LogicalOr LogicalXor Logspace Matmul Max Maximum Mean Median Meshgrid Min Minimum Mod Moveaxis
Multiply NanToNum Nanargmax Nanargmin Nancumprod Nancumsum Nanmax Nanmean Nanmedian Nanmin Nanpercentile
Nanprod Nanquantile Nanstd Nansum Nanvar Ndim Negative Nextafter Nonzero NotEqual OnesLike Outer Pad
Percentile Power Prod Ptp Quantile Rad2deg Ravel Real Reciprocal Repeat Reshape RightShift Roll Rot90 Round
SearchSorted Select Sign Signbit Sin Sinc Sinh Size Slogdet Sort Split Sqrt Square Squeeze Stack Std Subtract
Sum Swapaxes Take TakeAlongAxis Tan Tanh Tensordot Tile Trace Transpose Trapezoid Tril Triu TrueDivide Trunc
Unique UnravelIndex Vander Var Vdot View Vsplit Vstack Where ZerosLike
""",
    "keras.src.ops.nn": """
AdaptiveAveragePool AdaptiveMaxPool AveragePool BatchNorm BinaryCrossentropy CTCDecode CTCLoss
CategoricalCrossentropy Celu Conv ConvTranspose DepthToSpace DepthwiseConv DotProductAttention Elu Fold Gelu
Glu HardShrink HardSigmoid HardSilu HardTanh LayerNorm LeakyRelu LogSigmoid LogSoftmax MaxPool Moments
MultiHot Normalize OneHot PSNR Polar RMSNorm Relu Relu6 Selu SeparableConv Sigmoid Silu SoftShrink Softmax
Softplus Softsign SpaceToDepth SparseCategoricalCrossentropy SparsePlus SparseSigmoid Sparsemax Squareplus
TanhShrink Threshold Unfold
""",
    "keras.src.ops.math": """
CDist Erf Erfc Erfinv ExtractSequences FFT FFT2 IFFT2 IRFFT ISTFT InTopK Logdet Logsumexp RFFT Rsqrt STFT
SegmentMax SegmentMin SegmentProd SegmentReduction SegmentSum TopK ViewAsComplex ViewAsReal
""",
    "keras.src.ops.core": """
Cast ConvertToTensor SaturateCast Scatter ScatterUpdate Slice SliceUpdate StopGradient Unstack
""",
    "keras.src.ops.image": """
AffineTransform CropImages ElasticTransform ExtractPatches GaussianBlur HSVToRGB MapCoordinates PadImages
PerspectiveTransform RGBToGrayscale RGBToHSV Resize SSIM ScaleAndTranslate SobelEdges
""",
    "keras.src.ops.linalg": """
Cholesky CholeskyInverse Det Eig Eigh Inv Lstsq LuFactor MatrixRank Norm Pinv Qr SVD Solve SolveTriangular
""",
}
OPS = {module: frozenset(names.split()) for module, names in _OPS_TEXT.items()}
# tf.keras saves a TensorFlow function used on a tensor of a functional model (`x + y`, `tf.reshape(x, s)`)
# as a TFOpLambda (or SlicingOpLambda) layer naming it by its API path, which loading resolves among every
# TensorFlow symbol (`io.write_file` included): only computation namespaces and array functions pass.
TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
TF_NAMESPACES = ("__operators__.", "math.", "nn.", "linalg.")
TF_FUNCTIONS = frozenset(
    """
reshape concat stack unstack expand_dims squeeze transpose cast shape size rank gather gather_nd where tile
split ones_like zeros_like identity clip_by_value matmul einsum range fill one_hot pad slice strided_slice
broadcast_to norm argmax argmin cumsum sort argsort reverse boolean_mask stop_gradient unique repeat roll
reduce_sum reduce_mean reduce_max reduce_min reduce_prod reduce_any reduce_all maximum minimum abs exp sqrt
""".split()
)
# Lookup layers read their vocabulary from the archive (`.keras` assets, Keras 3) or from their
# configuration; a string there is a file path Keras opens when it loads the model.
LOOKUPS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
TEXT_OPTIONS = {
    "standardize": (None, "lower_and_strip_punctuation", "lower", "strip_punctuation"),
    "split": (None, "whitespace", "character"),
}
MAX_NODES = 1_000_000


def check_config(config: Any, where: str) -> list[str]:
    """Every object the configuration names, checked; returns the layer classes used (for the report)."""
    layers: list[str] = []
    stack: list[tuple[Any, int]] = [(config, 0)]
    visited = 0
    while stack:
        node, depth = stack.pop()
        visited += 1
        if depth > 200 or visited > MAX_NODES:
            raise refuse(Reason.LIMIT, "the configuration is too deep or too large", where)
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if "class_name" in node:
            _check_object(node, where)
            if node["class_name"] in LAYERS:
                layers.append(node["class_name"])
        if "function_type" in node:
            raise refuse(
                Reason.LAYER_REFUSED, "a serialized Python function (Lambda bytecode) in the configuration", where
            )
        stack.extend((value, depth + 1) for value in node.values())
    return layers


def _check_object(node: dict[str, Any], where: str) -> None:
    name = node["class_name"]
    module = node.get("module")
    registered = node.get("registered_name")
    if not isinstance(name, str):
        raise refuse(Reason.LAYER_REFUSED, "a class_name that is not a string", where)
    if name in REFUSED:
        raise refuse(Reason.LAYER_REFUSED, f"{REFUSED[name]}: class {name}", where)
    if name == "function":
        target = node.get("config")
        if (
            module not in ("keras.activations", "keras.losses", "keras.metrics", "builtins", None)
            or target not in FUNCTIONS
        ):
            raise refuse(Reason.LAYER_REFUSED, f"function {target!r} from module {module!r}, not one of Keras's", where)
        if registered not in (None, target, "function"):
            raise refuse(Reason.LAYER_REFUSED, f"function {target!r} registered as {registered!r}", where)
        return
    if name in TF_OP_LAYERS:
        config = node.get("config")
        function = config.get("function") if isinstance(config, dict) else None
        if not isinstance(function, str) or not tf_function_allowed(function) or registered is not None:
            raise refuse(
                Reason.LAYER_REFUSED,
                f"{name} calling {function!r}, not a TensorFlow computation the gate allows",
                where,
            )
        return
    if module in OPS:
        if name not in OPS[module] or registered not in (None, name):
            raise refuse(
                Reason.LAYER_REFUSED,
                f"operation {name!r} of {module!r} is not a Keras operation the gate allows",
                where,
            )
        return
    bare = name.removeprefix("Custom>")  # tf.keras 2.11+ saves its optimizers as Custom>Adam
    if (bare not in LAYERS and bare not in OTHERS) or (bare != name and bare not in OTHERS):
        registered_as = f", registered as {registered!r}" if registered else ""
        raise refuse(
            Reason.LAYER_REFUSED,
            f"class {name!r} (module {module!r}{registered_as}) is not a Keras class the gate allows",
            where,
        )
    if bare in LOOKUPS:
        _check_lookup(bare, node.get("config"), where)
    if module is not None and module not in MODULES:
        raise refuse(Reason.LAYER_REFUSED, f"class {name} from module {module!r}, which is not Keras's", where)
    if registered not in (None, name):
        raise refuse(
            Reason.LAYER_REFUSED, f"class {name} registered as {registered!r} (a class from outside Keras)", where
        )


def tf_function_allowed(function: str) -> bool:
    """A TensorFlow API path (`math.multiply`, `compat.v1.nn.relu`) of a computation the gate allows."""
    bare = function.removeprefix("compat.v1.")
    if bare.startswith(TF_NAMESPACES):
        rest = bare.split(".", 1)[1]
        return rest.isidentifier() or (bare.startswith("nn.") and all(p.isidentifier() for p in rest.split(".")))
    return bare in TF_FUNCTIONS


def _check_lookup(name: str, config: Any, where: str) -> None:
    if not isinstance(config, dict):
        raise refuse(Reason.LAYER_REFUSED, f"a {name} without a configuration", where)
    for key in ("vocabulary", "idf_weights"):
        value = config.get(key)
        if value is not None and not isinstance(value, list):
            raise refuse(
                Reason.LAYER_REFUSED,
                f"a {name} whose {key} is {type(value).__name__} (a file path is read at load)",
                where,
            )
    if name == "TextVectorization":
        for key, allowed in TEXT_OPTIONS.items():
            if config.get(key) not in allowed:
                raise refuse(Reason.LAYER_REFUSED, f"a TextVectorization whose {key} is {config.get(key)!r}", where)
