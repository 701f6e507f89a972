using System.Text.Json;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// A sweep's state: settings that must not change on resume, and every trial with its rung results. Written after
/// every trial run (to a temporary file, then moved over the old one, so a kill leaves either the old or the new
/// state), and read back to resume.
/// </summary>
internal sealed class SweepState
{
    public const string FormatName = "microsoft.ml.quantized.sweep-state";
    public const int CurrentVersion = 1;

    public string Format { get; set; } = FormatName;
    public int Version { get; set; } = CurrentVersion;
    public int Seed { get; set; }
    public string Objective { get; set; } = "";
    public bool Maximize { get; set; }
    public List<int> Rungs { get; set; } = new();
    public List<TrialState> Trials { get; set; } = new();

    public void Save(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temporary = full + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(this, SweepJson.Options));
        File.Move(temporary, full, overwrite: true);
    }

    /// <summary>Reads a state file; null when it does not exist. Throws <see cref="InvalidDataException"/> for a damaged or foreign file.</summary>
    public static SweepState? Load(string path)
    {
        if (!File.Exists(path)) return null;
        SweepState? state;
        try
        {
            state = JsonSerializer.Deserialize<SweepState>(File.ReadAllText(path), SweepJson.Options);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The sweep state file '{path}' is damaged ({e.Message}). Delete it to start over, or call SetStateFile with another path.", e);
        }
        if (state is null || state.Format != FormatName)
            throw new InvalidDataException($"'{path}' is not a sweep state file. Call SetStateFile with another path.");
        if (state.Version > CurrentVersion)
            throw new InvalidDataException($"The sweep state file '{path}' has format version {state.Version}; this library reads up to {CurrentVersion}. Update the library or use another state file.");
        if (state.Trials.Any(t => t.Configuration is null))
            throw new InvalidDataException($"The sweep state file '{path}' holds a trial without a configuration. Delete it to start over.");
        return state;
    }
}

/// <summary>A trial's mutable record (what the state file stores).</summary>
internal sealed class TrialState
{
    public int Id { get; set; }
    public int Bracket { get; set; }
    public QuantizationConfiguration Configuration { get; set; } = null!;

    /// <summary>Final status, or null while the trial may still run (pending, running, or interrupted).</summary>
    public TrialStatus? Status { get; set; }
    public string? Error { get; set; }
    public double Seconds { get; set; }
    public List<RungResult> Rungs { get; set; } = new();

    /// <summary>This run started the trial and was stopped before it finished (not saved: a resume reruns it).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool Interrupted { get; set; }

    public RungResult? ResultAt(int epochs) => Rungs.FirstOrDefault(r => r.Epochs == epochs);

    /// <summary>Whether the trial belongs in a result: it ran at least once.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool HasRun => Status is not null || Rungs.Count > 0 || Interrupted;

    public TrialResult Snapshot() =>
        new(Id, Bracket, Configuration, Status ?? TrialStatus.Stopped, Rungs.ToArray(), Error, Seconds);
}
