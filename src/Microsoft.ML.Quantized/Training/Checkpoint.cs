using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace Microsoft.ML.Quantized;

/// <summary>
/// A per-epoch training checkpoint: network and optimizer state, schedule, history and best weights, with a
/// fingerprint of the configuration (a checkpoint of another configuration is refused) and a SHA-256 checksum.
/// Written to a temporary file and moved into place, so a crash mid-write never leaves a broken checkpoint.
/// </summary>
internal sealed class Checkpoint
{
    private const string Magic = "MLQZ-CHECKPOINT";
    /// <summary>2 added each epoch's gradient norms; version 1 still reads (its epochs' norms NaN).</summary>
    private const int FormatVersion = 2;
    private const string FileName = "training.checkpoint";
    private readonly string _path;
    private readonly string _fingerprint;

    public Checkpoint(string directory, string fingerprint)
    {
        Directory.CreateDirectory(directory);
        _path = Path.Combine(directory, FileName);
        _fingerprint = fingerprint;
    }

    public string FilePath => _path;

    public void Save(nn.Module network, OptimizerHelper optimizer, LoopState state)
    {
        using var body = new MemoryStream();
        using (var w = new BinaryWriter(body, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(_fingerprint);
            w.Write(state.EpochsDone);
            w.Write(state.LearningRate);
            w.Write(state.BestLoss);
            w.Write(state.EpochsWithoutImprovement);
            w.Write(state.Stopped);
            w.Write(state.History.Count);
            foreach (var e in state.History)
            {
                w.Write(e.Epoch); w.Write(e.TrainingLoss); w.Write(e.ValidationLoss);
                w.Write(e.LearningRate); w.Write(e.UnitsPerSecond); w.Write(e.Seconds);
                w.Write(e.MeanGradientNorm); w.Write(e.MaxGradientNorm);
            }
            WriteBlob(w, TrainingLoop.SaveWeights(network));
            WriteBlob(w, state.BestWeights ?? Array.Empty<byte>());
            using var optimizerState = new MemoryStream();
            using (var ow = new BinaryWriter(optimizerState, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(ow);
            WriteBlob(w, optimizerState.ToArray());
        }
        var bytes = body.ToArray();
        var temp = _path + ".tmp";
        using (var file = File.Create(temp))
        {
            file.Write(bytes);
            file.Write(SHA256.HashData(bytes));
        }
        File.Move(temp, _path, overwrite: true);
    }

    /// <summary>Restores state from the checkpoint file if there is one.</summary>
    /// <exception cref="InvalidDataException">The file is damaged, of another format, or of another configuration.</exception>
    public bool TryRestore(nn.Module network, OptimizerHelper optimizer, out LoopState state)
    {
        state = null!;
        if (!File.Exists(_path)) return false;
        var (r, version, fingerprint) = Open(_path);
        using (r)
        {
            if (fingerprint != _fingerprint)
                throw new InvalidDataException($"The checkpoint '{_path}' was written by a different model or training configuration; use another CheckpointDirectory or delete the file. Checkpoint: {fingerprint}. Now: {_fingerprint}.");
            var restored = ReadState(r, version);
            restored.EpochsDoneAtStart = restored.EpochsDone;
            TrainingLoop.LoadWeights(network, ReadBlob(r));
            var best = ReadBlob(r);
            restored.BestWeights = best.Length == 0 ? null : best;
            using (var optimizerReader = new BinaryReader(new MemoryStream(ReadBlob(r)))) optimizer.load_state_dict(optimizerReader);
            state = restored;
        }
        return true;
    }

    /// <summary>
    /// The network weights as the last epoch in the checkpoint of <paramref name="directory"/> left them (not the best
    /// epoch's, which training restores at its end), in <see cref="TrainingLoop.SaveWeights"/>' form: for probes that score
    /// every epoch's own model.
    /// </summary>
    /// <exception cref="FileNotFoundException">The folder holds no checkpoint.</exception>
    /// <exception cref="InvalidDataException">The file is damaged or of another format.</exception>
    public static byte[] LastEpochWeights(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"No training checkpoint in '{directory}'.", path);
        var (r, version, _) = Open(path);
        using (r)
        {
            ReadState(r, version);
            return ReadBlob(r);
        }
    }

    /// <summary>Reads a checkpoint file, checks its checksum, magic and version; the reader stands after the fingerprint.</summary>
    private static (BinaryReader Reader, int Version, string Fingerprint) Open(string path)
    {
        var all = File.ReadAllBytes(path);
        if (all.Length < 32 || !SHA256.HashData(all.AsSpan(0, all.Length - 32)).AsSpan().SequenceEqual(all.AsSpan(all.Length - 32)))
            throw new InvalidDataException($"The checkpoint '{path}' is damaged (checksum mismatch). Delete it to start training afresh.");
        var r = new BinaryReader(new MemoryStream(all, 0, all.Length - 32));
        if (r.ReadString() != Magic) throw new InvalidDataException($"'{path}' is not a Microsoft.ML.Quantized training checkpoint.");
        int version = r.ReadInt32();
        if (version is < 1 or > FormatVersion)
            throw new InvalidDataException($"The checkpoint '{path}' has format version {version}; this library reads versions 1 to {FormatVersion}. Delete it to start afresh.");
        return (r, version, r.ReadString());
    }

    /// <summary>The schedule and history that follow the fingerprint.</summary>
    private static LoopState ReadState(BinaryReader r, int version)
    {
        var state = new LoopState(0)
        {
            EpochsDone = r.ReadInt32(),
            LearningRate = r.ReadDouble(),
            BestLoss = r.ReadDouble(),
            EpochsWithoutImprovement = r.ReadInt32(),
            Stopped = r.ReadBoolean(),
        };
        int count = r.ReadInt32();
        for (int i = 0; i < count; i++)
            state.History.Add(new EpochSummary(r.ReadInt32(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(), r.ReadDouble(),
                version >= 2 ? r.ReadDouble() : double.NaN, version >= 2 ? r.ReadDouble() : double.NaN));
        return state;
    }

    private static void WriteBlob(BinaryWriter w, byte[] blob)
    {
        w.Write(blob.Length);
        w.Write(blob);
    }

    private static byte[] ReadBlob(BinaryReader r) => r.ReadBytes(r.ReadInt32());
}
