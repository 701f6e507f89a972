using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The one place a trained torch network becomes a packed model: every weight matrix through its own quantizer's
/// deployable codes (<see cref="Quantizer.Encode"/> -> <see cref="QuantizedWeights"/> -> <see cref="PackedMatrix"/>, the
/// path <see cref="ModelSizeReport"/> measures), weight normalization's <c>g / ||Q(W)||_row</c> folded into per-row
/// scales, batch normalization's running statistics folded into per-step scales and shifts, and the biases, layer-norm
/// parameters, HitNet slopes and activation quantizers in their evaluation form. The packed model computes what the
/// network computes in evaluation mode (<c>eval()</c>, no dropout), to float rounding.
/// </summary>
/// <remarks>Reads the network without changing it; every tensor it makes is disposed before it returns.</remarks>
internal static class PackedModelEncoder
{

    /// <summary>
    /// The report of a network: each weight matrix packed as its quantizer encodes it, and every other parameter
    /// (biases, gains, norms, learned steps) and every buffer (batch normalization's running statistics, one set per
    /// step with <see cref="RecurrentNormalization.BatchPerStep"/>, which the packed model keeps as a scale and shift
    /// per step) counted as float32.
    /// </summary>
    public static ModelSizeReport SizeReport(nn.Module network, IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> weightMatrices)
    {
        var matrices = weightMatrices.ToList();
        var handles = new HashSet<IntPtr>(matrices.Select(m => m.Weight.Handle));
        long others = network.parameters().Where(p => !handles.Contains(p.Handle)).Sum(p => p.numel()) + network.buffers().Sum(b => b.numel());
        return ModelSizeReport.From(matrices.Select(m => PackedMatrix.FromQuantizedWeights(m.Quantizer.Encode(m.Weight))), others);
    }

    /// <summary>Packs a language model: embedding, recurrent stack, decoder.</summary>
    public static PackedLanguageModelNetwork Encode(LanguageModelNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (embedding, embeddingQuantizer) = network.Embedding;
        var (decoder, decoderBias, decoderQuantizer) = network.Decoder;
        return new PackedLanguageModelNetwork(
            Matrix(embedding, embeddingQuantizer), Encode(network.Recurrent), Matrix(decoder, decoderQuantizer), Floats(decoderBias));
    }

    /// <summary>Packs a sequence classifier: embedding (token input), recurrent stack, head.</summary>
    public static PackedSequenceClassifierNetwork Encode(SequenceClassifierNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var embedding = network.Embedding is { } table ? Matrix(table.Weight, table.Quantizer) : null;
        var (head, headBias, headQuantizer) = network.Head;
        return new PackedSequenceClassifierNetwork(
            network.InputKind, network.InputSize, embedding, Encode(network.Recurrent), Matrix(head, headQuantizer), Floats(headBias), network.Pooling);
    }

    /// <summary>Packs a recurrent stack.</summary>
    /// <exception cref="InvalidOperationException">A learned activation step was never initialized (the network never ran forward).</exception>
    /// <exception cref="NotSupportedException">An activation quantizer has no evaluation form in the engine.</exception>
    public static PackedRecurrentStack Encode(QuantizedRecurrentStack stack)
    {
        ArgumentNullException.ThrowIfNull(stack);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return new PackedRecurrentStack(stack.Layers.Select(Layer).ToArray());
    }

    private static PackedRecurrentLayer Layer(QuantizedRecurrentCell cell)
    {
        var input = Projection(cell.WeightIh, cell.WeightIhQuantizer, cell.WeightIhNorm, cell.InputLayerNorm, cell.InputBatchNorm, cell.BiasIh);
        var hidden = Projection(cell.WeightHh, cell.WeightHhQuantizer, cell.WeightHhNorm, cell.HiddenLayerNorm, cell.HiddenBatchNorm, cell.BiasHh);
        var activations = cell.ActivationQuantizers.Select(Activation).ToArray();
        var s = cell.Slopes;
        return cell switch
        {
            QuantizedLstmCell lstm => new PackedLstmLayer(
                input, hidden, [(float)s.InputGate, (float)s.ForgetGate, (float)s.Candidate, (float)s.OutputGate, (float)s.CellOutput], activations,
                lstm.CellLayerNorm is null ? null : LayerNorm(lstm.CellLayerNorm)),
            QuantizedGruCell => new PackedGruLayer(input, hidden, [(float)s.InputGate, (float)s.ForgetGate, (float)s.Candidate], activations),
            _ => throw new NotSupportedException($"No packed form for the recurrent cell {cell.GetType().Name}."),
        };
    }

    /// <summary>One product term: the packed weight (weight normalization folded in), its normalization and its bias.</summary>
    private static PackedProjection Projection(
        Tensor weight, Quantizer quantizer, WeightNorm? weightNorm, RecurrentLayerNorm? layerNorm, RecurrentBatchNorm? batchNorm, Tensor bias)
    {
        PackedNormalization? normalization = layerNorm is not null ? LayerNorm(layerNorm) : batchNorm is not null ? BatchNorm(batchNorm) : null;
        return new PackedProjection(Matrix(weight, quantizer, weightNorm), normalization, Floats(bias));
    }

    /// <summary>
    /// The weight as its quantizer stores it; under weight normalization, row r scaled by <c>g_r / ||Q(W)_r||</c> (the norm
    /// of the decoded row; 1 for an all-zero row, as in <see cref="WeightNorm"/>), which makes the scales per row.
    /// </summary>
    private static PackedMatrix Matrix(Tensor weight, Quantizer quantizer, WeightNorm? weightNorm = null)
    {
        var encoded = quantizer.Encode(weight);
        if (weightNorm is not null)
        {
            var gain = Floats(weightNorm.Gain);
            var decoded = encoded.DecodeAll();
            var multipliers = new float[encoded.Rows];
            for (int r = 0; r < encoded.Rows; r++)
            {
                double squares = 0;
                for (int c = 0; c < encoded.Columns; c++) squares += (double)decoded[r * encoded.Columns + c] * decoded[r * encoded.Columns + c];
                multipliers[r] = squares > 0 ? gain[r] / (float)Math.Sqrt(squares) : 1f;
            }
            encoded = encoded.ScaleRows(multipliers);
        }
        return PackedMatrix.FromQuantizedWeights(encoded);
    }

    private static PackedLayerNorm LayerNorm(RecurrentLayerNorm norm) => new(Floats(norm.Gain), Floats(norm.Bias), (float)norm.Epsilon, norm.Groups);

    private static PackedBatchNorm BatchNorm(RecurrentBatchNorm norm)
        => PackedBatchNorm.Fold(Floats(norm.Gain), Floats(norm.Bias), Floats(norm.RunningMean), Floats(norm.RunningVar), (float)norm.Epsilon);

    /// <summary>An activation quantizer's evaluation form.</summary>
    public static PackedActivationQuantizer Activation(Quantizer quantizer)
    {
        if (quantizer.IsIdentity) return PackedActivationQuantizer.None;
        switch (quantizer)
        {
            case BernoulliTernaryQuantizer:
                return PackedActivationQuantizer.BernoulliTernary;
            case UniformQuantizer uniform:
                var options = uniform.Options;
                if (!options.LearnedScale)
                {
                    if (options.MinimumErrorStep)
                        throw new NotSupportedException(
                            $"Activation quantizer '{uniform.RegistryName}' searches a minimum-error step for every tensor; the engine computes max |x| / Qp steps or uses a learned one.");
                    return PackedActivationQuantizer.Uniform(uniform.Bits, 0f, (float)options.StepSizeMultiplier, options.PowerOfTwoScale);
                }
                var learned = uniform.Step;
                if (learned is null || learned.numel() != 1)
                    throw new NotSupportedException($"Activation quantizer '{uniform.RegistryName}' needs one learned step per tensor.");
                float raw = learned.item<float>();
                if (raw == 0f)
                    throw new InvalidOperationException(
                        $"Activation quantizer '{uniform.RegistryName}' has a learned step that was never initialized (it is set from the first activations the " +
                        "network sees); train or run the network forward once before packing it.");
                float step = MathF.Max(raw, 1e-12f);
                if (options.StepSizeMultiplier != 1.0) step *= (float)options.StepSizeMultiplier;
                return PackedActivationQuantizer.Uniform(uniform.Bits, step, 1f, false);
            default:
                throw new NotSupportedException($"Activation quantizer '{quantizer.RegistryName}' has no evaluation form in the scoring engine.");
        }
    }

    /// <summary>The values of <paramref name="tensor"/>, flattened, as float32 on the CPU.</summary>
    private static float[] Floats(Tensor tensor)
    {
        using var cpu = tensor.detach().to_type(ScalarType.Float32).cpu().contiguous();
        return cpu.data<float>().ToArray();
    }
}
