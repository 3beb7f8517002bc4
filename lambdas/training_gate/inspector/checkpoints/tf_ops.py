"""Which TensorFlow operations a SavedModel may hold: an allowlist of computation, kept as data.

Published attacks (TensorAbuse, 2024) reach files and the network through ordinary ops, so no denylist is
enough: every op in the graph, in every function of the library and named by a function-valued
attribute must be one of `ALLOWED` (math, neural-network, array, control flow, variables, string and
image computation, parsing from tensors). Anything else is refused; the categories below only word the
refusal (a file, system or network, Python-function or input-pipeline op). Taking the next element of an
iterator is allowed (tf.keras saves its lookup layers' `adapt_step`): an iterator comes only from a dataset,
and every op that makes a dataset is refused. The checkpoint ops
(`SAVER`) are allowed only in the functions and nodes the SaverDef itself names, which the loader feeds
the variables' path.
"""

from __future__ import annotations

import re

_GROUPS = """
Const Identity IdentityN NoOp Placeholder PlaceholderV2 PlaceholderWithDefault StopGradient PreventGradient
EnsureShape CheckNumerics CheckNumericsV2 Assert PartitionedCall StatefulPartitionedCall If StatelessIf While
StatelessWhile Case StatelessCase For Switch Merge Enter Exit NextIteration LoopCond ControlTrigger RefEnter
RefExit RefIdentity RefMerge RefNextIteration RefSelect RefSwitch GuaranteeConst Snapshot DisableCopyOnRead
SymbolicGradient BatchFunction Timestamp Fingerprint DeepCopy Print

VarHandleOp ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp VarIsInitializedOp
VariableShape DestroyResourceOp ResourceGather ResourceGatherNd Variable VariableV2 Assign AssignAdd AssignSub
IsVariableInitialized TemporaryVariable DestroyTemporaryVariable ResourceStridedSliceAssign StridedSliceAssign
ResourceCountUpTo CountUpTo

Abs Acos Acosh Add AddN AddV2 AccumulateNV2 All Any ApproximateEqual ArgMax ArgMin Asin Asinh Atan Atan2 Atanh
BatchMatMul BatchMatMulV2 BatchMatMulV3 Betainc Bincount DenseBincount Bucketize Cast Ceil ClipByValue Complex
ComplexAbs Conj Cos Cosh Cross Cumprod Cumsum CumulativeLogsumexp Digamma Div DivNoNan Equal Erf Erfc Erfinv
EuclideanNorm Exp Expm1 Floor FloorDiv FloorMod Greater GreaterEqual Igamma Igammac IgammaGradA Imag Inv InvGrad
Invert IsFinite IsInf IsNan Less LessEqual Lgamma LinSpace Log Log1p LogicalAnd LogicalNot LogicalOr MatMul Max
Maximum Mean Min Minimum Mod Mul MulNoNan Ndtri Neg NextAfter NotEqual Polygamma Pow Prod Range Real RealDiv
Reciprocal ReciprocalGrad Rint Round Rsqrt RsqrtGrad SegmentMax SegmentMaxV2 SegmentMean SegmentMin SegmentMinV2
SegmentProd SegmentProdV2 SegmentSum SegmentSumV2 Select SelectV2 Sigmoid SigmoidGrad Sign Sin Sinh Sqrt SqrtGrad
Square SquaredDifference Sub Sum Tan Tanh TanhGrad TruncateDiv TruncateMod UnsortedSegmentMax UnsortedSegmentMin
UnsortedSegmentProd UnsortedSegmentSum Xdivy Xlog1py Xlogy Zeta BitwiseAnd BitwiseOr BitwiseXor LeftShift
RightShift PopulationCount Einsum BesselI0 BesselI0e BesselI1 BesselI1e BesselJ0 BesselJ1 BesselK0 BesselK0e
BesselK1 BesselK1e BesselY0 BesselY1 Dawsn Expint FresnelCos FresnelSin Spence Angle HistogramFixedWidth

BiasAdd BiasAddV1 BiasAddGrad Conv Conv2D Conv3D DepthwiseConv2dNative Conv2DBackpropInput Conv2DBackpropInputV2
Conv2DBackpropFilter Conv3DBackpropInputV2 Conv3DBackpropFilterV2 DepthwiseConv2dNativeBackpropInput
DepthwiseConv2dNativeBackpropFilter AvgPool AvgPool3D AvgPoolGrad MaxPool MaxPoolV2 MaxPool3D MaxPoolWithArgmax
MaxPoolGrad MaxPoolGradV2 FractionalAvgPool FractionalMaxPool FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3
FusedBatchNormGrad FusedBatchNormGradV2 FusedBatchNormGradV3 BatchNormWithGlobalNormalization LRN Relu Relu6
ReluGrad Relu6Grad Elu EluGrad Selu SeluGrad LeakyRelu LeakyReluGrad Softplus SoftplusGrad Softsign SoftsignGrad
Softmax LogSoftmax L2Loss InTopK InTopKV2 TopK TopKV2 ApproxTopK Dilation2D FusedPadConv2D FusedResizeAndPadConv2D
SoftmaxCrossEntropyWithLogits SparseSoftmaxCrossEntropyWithLogits CTCGreedyDecoder CTCBeamSearchDecoder CTCLoss
CTCLossV2 NthElement BlockLSTM BlockLSTMV2 LSTMBlockCell GRUBlockCell CudnnRNN CudnnRNNV2 CudnnRNNV3
CudnnRNNBackprop CudnnRNNBackpropV2 CudnnRNNBackpropV3
CudnnRNNParamsSize CudnnRNNCanonicalToParams CudnnRNNCanonicalToParamsV2 CudnnRNNParamsToCanonical
CudnnRNNParamsToCanonicalV2 IsotonicRegression

BatchToSpace BatchToSpaceND BroadcastArgs BroadcastTo BroadcastGradientArgs Concat ConcatV2 ConcatOffset
DepthToSpace Diag DiagPart Empty ExpandDims ExtractImagePatches ExtractVolumePatches Fill Gather GatherNd
GatherV2 InvertPermutation MatrixBandPart MatrixDiag MatrixDiagV2 MatrixDiagV3 MatrixDiagPart MatrixDiagPartV2
MatrixDiagPartV3 MatrixSetDiag MatrixSetDiagV2 MatrixSetDiagV3 MirrorPad MirrorPadGrad OneHot OnesLike Pack Pad
PadV2 ParallelConcat Rank Reshape Reverse ReverseV2 ReverseSequence Roll ScatterNd ScatterNdNonAliasingAdd Shape
ShapeN Size Slice SpaceToBatch SpaceToBatchND SpaceToDepth Split SplitV Squeeze StridedSlice StridedSliceGrad
TensorScatterAdd TensorScatterMax TensorScatterMin TensorScatterSub TensorScatterUpdate TensorStridedSliceUpdate
Tile TileGrad Transpose ConjugateTranspose Unique UniqueV2 UniqueWithCounts UniqueWithCountsV2 Unpack
UnravelIndex Where ZerosLike ListDiff LowerBound UpperBound Bitcast DynamicPartition DynamicStitch
ParallelDynamicStitch DataFormatDimMap DataFormatVecPermute QuantizeAndDequantize QuantizeAndDequantizeV2
QuantizeAndDequantizeV3 QuantizeAndDequantizeV4 FakeQuantWithMinMaxArgs FakeQuantWithMinMaxVars
FakeQuantWithMinMaxVarsPerChannel QuantizeV2 Dequantize InplaceAdd InplaceSub InplaceUpdate

Cholesky MatrixInverse MatrixDeterminant LogMatrixDeterminant MatrixSolve MatrixTriangularSolve Qr Svd
SelfAdjointEig SelfAdjointEigV2 Lu MatrixSolveLs MatrixExponential MatrixLogarithm MatrixSquareRoot
TridiagonalSolve TridiagonalMatMul BandedTriangularSolve Eig BatchMatrixBandPart BatchMatrixDiag
BatchMatrixDiagPart BatchMatrixSetDiag BatchMatrixInverse BatchMatrixDeterminant BatchMatrixSolve
BatchMatrixTriangularSolve BatchCholesky BatchSelfAdjointEigV2 BatchSvd
FFT FFT2D FFT3D FFTND IFFT IFFT2D IFFT3D IFFTND RFFT RFFT2D RFFT3D RFFTND IRFFT IRFFT2D IRFFT3D IRFFTND

RandomUniform RandomUniformInt RandomStandardNormal TruncatedNormal ParameterizedTruncatedNormal Multinomial
RandomShuffle RandomGamma RandomPoisson RandomPoissonV2 StatelessRandomUniform StatelessRandomUniformInt
StatelessRandomUniformV2 StatelessRandomUniformIntV2 StatelessRandomUniformFullInt StatelessRandomUniformFullIntV2
StatelessRandomNormal StatelessRandomNormalV2 StatelessTruncatedNormal StatelessTruncatedNormalV2
StatelessMultinomial StatelessRandomBinomial StatelessRandomGammaV2 StatelessRandomGammaV3 StatelessRandomPoisson
StatelessParameterizedTruncatedNormal StatelessShuffle StatelessRandomGetKeyCounter StatelessRandomGetAlg
StatelessRandomGetKeyCounterAlg StatefulUniform StatefulUniformInt StatefulUniformFullInt StatefulStandardNormalV2
StatefulTruncatedNormal StatefulRandomBinomial RngReadAndSkip RngSkip RandomIndexShuffle

StringJoin StaticRegexFullMatch StaticRegexReplace RegexFullMatch RegexReplace StringLength StringLower
StringUpper StringSplit StringSplitV2 StringStrip StringToHashBucket StringToHashBucketFast
StringToHashBucketStrong StringToNumber Substr AsString StringFormat ReduceJoin UnicodeDecode
UnicodeDecodeWithOffsets UnicodeEncode UnicodeScript UnicodeTranscode StringNGrams DecodeBase64 EncodeBase64
ShardedFilename ShardedFilespec UnsortedSegmentJoin

ResizeBilinear ResizeNearestNeighbor ResizeBicubic ResizeArea CropAndResize ScaleAndTranslate AdjustContrastv2
AdjustHue AdjustSaturation HSVToRGB RGBToHSV NonMaxSuppression NonMaxSuppressionV2 NonMaxSuppressionV3
NonMaxSuppressionV4 NonMaxSuppressionV5 NonMaxSuppressionWithOverlaps CombinedNonMaxSuppression
ImageProjectiveTransformV2 ImageProjectiveTransformV3 DecodeJpeg DecodePng DecodeImage DecodeBmp DecodeGif
DecodeAndCropJpeg DecodeWebP EncodeJpeg EncodeJpegVariableQuality EncodePng ExtractJpegShape DrawBoundingBoxes
DrawBoundingBoxesV2 ExtractGlimpse ExtractGlimpseV2 GenerateBoundingBoxProposals DecodeWav EncodeWav
AudioSpectrogram Mfcc

ParseExample ParseExampleV2 ParseSingleExample ParseSequenceExample ParseSequenceExampleV2
ParseSingleSequenceExample DecodeCSV DecodeRaw DecodePaddedRaw DecodeJSONExample ParseTensor SerializeTensor
DecodeCompressed

RaggedGather RaggedRange RaggedTensorToTensor RaggedTensorToSparse RaggedTensorFromVariant RaggedTensorToVariant
RaggedTensorToVariantGradient RaggedCross RaggedBincount RaggedCountSparseOutput RaggedFillEmptyRows
SparseToDense SparseTensorDenseMatMul SparseReshape SparseSegmentMean SparseSegmentMeanWithNumSegments
SparseSegmentSqrtN SparseSegmentSqrtNWithNumSegments SparseSegmentSum SparseSegmentSumWithNumSegments
SparseFillEmptyRows SparseConcat SparseSlice SparseReorder SparseAdd SparseReduceMax SparseReduceMaxSparse
SparseReduceSum SparseReduceSumSparse SparseCross SparseCrossHashed SparseCrossV2 SparseSoftmax SparseSplit
SparseDenseCwiseAdd SparseDenseCwiseDiv SparseDenseCwiseMul SparseMatMul SparseTensorDenseAdd
SparseCountSparseOutput SparseBincount DenseCountSparseOutput SparseSparseMaximum SparseSparseMinimum
SparseToSparseSetOperation DenseToDenseSetOperation DenseToSparseSetOperation SetSize DeserializeSparse
SerializeSparse SerializeManySparse DeserializeManySparse CompositeTensorVariantFromComponents
CompositeTensorVariantToComponents

TensorListConcat TensorListConcatLists TensorListConcatV2 TensorListElementShape TensorListFromTensor
TensorListGather TensorListGetItem TensorListLength TensorListPopBack TensorListPushBack TensorListPushBackBatch
TensorListReserve TensorListResize TensorListScatter TensorListScatterIntoExistingList TensorListScatterV2
TensorListSetItem TensorListSplit TensorListStack EmptyTensorList EmptyTensorMap TensorMapErase TensorMapHasKey
TensorMapInsert TensorMapLookup TensorMapSize TensorMapStackKeys TensorArrayV3 TensorArrayReadV3
TensorArrayWriteV3 TensorArrayGatherV3 TensorArrayScatterV3 TensorArraySizeV3 TensorArrayCloseV3
TensorArrayConcatV3 TensorArraySplitV3 TensorArrayGradV3 TensorArrayGradWithShape OptionalFromValue
OptionalGetValue OptionalHasValue OptionalNone StackV2 StackPushV2 StackPopV2 StackCloseV2
IteratorGetNext IteratorGetNextSync IteratorGetNextAsOptional

HashTable HashTableV2 MutableHashTable MutableHashTableV2 MutableHashTableOfTensors MutableHashTableOfTensorsV2
MutableDenseHashTable MutableDenseHashTableV2 AnonymousHashTable AnonymousMutableHashTable
AnonymousMutableHashTableOfTensors AnonymousMutableDenseHashTable InitializeTable InitializeTableV2
LookupTableFind LookupTableFindV2 LookupTableImport LookupTableImportV2 LookupTableInsert LookupTableInsertV2
LookupTableRemoveV2 LookupTableSize LookupTableSizeV2 LookupTableExport LookupTableExportV2

ApplyAdaMax ApplyAdadelta ApplyAdagrad ApplyAdagradDA ApplyAdagradV2 ApplyAdam ApplyAddSign ApplyCenteredRMSProp
ApplyFtrl ApplyFtrlV2 ApplyGradientDescent ApplyMomentum ApplyPowerSign ApplyProximalAdagrad
ApplyProximalGradientDescent ApplyRMSProp ResourceApplyAdaMax ResourceApplyAdadelta ResourceApplyAdagrad
ResourceApplyAdagradDA ResourceApplyAdagradV2 ResourceApplyAdam ResourceApplyAdamWithAmsgrad ResourceApplyAddSign
ResourceApplyCenteredRMSProp ResourceApplyFtrl ResourceApplyFtrlV2 ResourceApplyGradientDescent
ResourceApplyKerasMomentum ResourceApplyMomentum ResourceApplyPowerSign ResourceApplyProximalAdagrad
ResourceApplyProximalGradientDescent ResourceApplyRMSProp ResourceScatterAdd ResourceScatterDiv
ResourceScatterMax ResourceScatterMin ResourceScatterMul ResourceScatterNdAdd ResourceScatterNdMax
ResourceScatterNdMin ResourceScatterNdSub ResourceScatterNdUpdate ResourceScatterSub ResourceScatterUpdate
ScatterAdd ScatterDiv ScatterMax ScatterMin ScatterMul ScatterNdAdd ScatterNdMax ScatterNdMin ScatterNdSub
ScatterNdUpdate ScatterSub ScatterUpdate
"""
ALLOWED = frozenset(_GROUPS.split())
# Allowed with a condition on an attribute (op -> (attribute, allowed string values)).
CONDITIONAL = {"PrintV2": ("output_stream", frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"}))}
# Tables filled from a text file (tf.lookup.TextFileInitializer, TF Transform's vocabularies): the file is
# usually an asset of the SavedModel, but the op reads whatever path it is given. Inconclusive, not refused.
FILE_TABLES = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
# The checkpoint ops: only where the SaverDef's own nodes and functions use them.
SAVER = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "Restore", "RestoreSlice", "SaveSlices"})

_FILE = re.compile(
    r"ReadFile|WriteFile|MatchingFiles|ImmutableConst|LoadAndRemapMatrix|GenerateVocabRemapping|"
    r"InitializeTableFromTextFile.*|FileSystemSetConfiguration|.*Reader(V2)?|Reader.*|.*Summary.*|"
    r"CreateSummary.*|SummaryWriter|ImportEvent|DecodeProtoV2|EncodeProto|Save.*|Restore.*|MergeV2Checkpoints|"
    r"DatasetToTFRecord|.*Checkpoint.*"
)
_SYSTEM = re.compile(
    r"_?Send|_?Recv|HostSend|HostRecv|RemoteCall|Collective.*|Nccl.*|.*Rpc.*|.*TPU.*|Infeed.*|Outfeed.*|"
    r"WorkerHeartbeat|Abort|DistributedSave|Debug.*|GetSessionHandle.*|GetSessionTensor|DeleteSessionTensor|"
    r"Barrier.*|.*Queue.*|.*Stage.*|Map(Clear|Peek|Size|Stage|Unstage.*|IncompleteSize)|Mutex.*|ConsumeMutexLock"
)
_PYTHON = re.compile(r"PyFunc|PyFuncStateless|EagerPyFunc")
_PIPELINE = re.compile(r".*Dataset.*|.*Iterator.*|.*SeedGenerator.*|.*MemoryCache.*|Prelinearize.*")


def category(op: str) -> str:
    """Why an op outside the allowlist is refused, in words (the decision is the allowlist's)."""
    if _PYTHON.fullmatch(op):
        return "a Python-function op (runs Python code when the graph runs)"
    if _FILE.fullmatch(op):
        return "a file op (reads or writes files)"
    if _SYSTEM.fullmatch(op):
        return "a system or network op"
    if _PIPELINE.fullmatch(op):
        return "an input-pipeline op (datasets read files and run functions)"
    return "outside the gate's allowlist of computation ops"
