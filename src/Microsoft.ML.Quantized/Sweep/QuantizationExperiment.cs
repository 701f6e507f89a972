using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Runtime;
using TorchSharp;

namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// Sweeps quantized recurrent configurations, shaped after ML.NET AutoML's <c>AutoMLExperiment</c>: set a search
/// space, a tuner, a trial runner (which holds the data and trains one configuration), an objective and budgets, then
/// <see cref="RunAsync"/>. Configurations are proposed in brackets and trained with successive halving over epochs
/// (<see cref="SetSuccessiveHalving"/>): every trial of a bracket trains to the first epoch budget, the top 1/eta go
/// on to the next, up to the full budget. Brackets are synchronous, so a sweep is deterministic for a given seed
/// whatever its parallelism. With <see cref="SetStateFile"/>, the state is saved after every trial run and a killed
/// sweep resumes where it stopped: finished trials are kept and not run again; a trial interrupted mid-run is rerun
/// (resuming from its own checkpoint when the runner writes one). Without a state file or
/// <see cref="SetCheckpointDirectory"/>, the trials' checkpoints and models go to a new temporary folder that is deleted
/// when the sweep ends (completed, cancelled or failed); the models of the Pareto front, the best one included, are kept in
/// memory in the result (<see cref="TrialResult.OpenModel"/>; a model file holds the float weights, 4 bytes a parameter,
/// so set a checkpoint folder for large models with a long front).
/// ML.NET users create it with <c>mlContext.Quantized().CreateExperiment()</c>, which takes the MLContext's seed, logs
/// to its log and stops when <c>MLContext.CancelExecution()</c> is called; a runner made by a trainer's or estimator's
/// <c>CreateTrialRunner</c> turns a trial into the transformer <c>Fit</c> returns
/// (<see cref="TransformerTrialRunner{TTransformer}.CreateTransformer"/>).
/// </summary>
/// <example>
/// <code>
/// var result = await new QuantizationExperiment(seed: 1)
///     .SetSearchSpace(new QuantizationSearchSpace { Cells = [RecurrentCellKind.Gru] })
///     .SetTuner(new TreeParzenTuner())
///     .SetTrialRunner(runner)
///     .SetSuccessiveHalving(minEpochs: 1, maxEpochs: 9)
///     .SetMaxModelToExplore(45)
///     .SetTrainingTimeInSeconds(600)
///     .SetStateFile("sweep.json")
///     .RunAsync();
/// Console.WriteLine(result.BestUnderBytes(50_000));
/// </code>
/// </example>
public sealed class QuantizationExperiment
{
    // How often a duplicate proposal is answered by asking the tuner again before the space counts as exhausted.
    private const int MaxProposalAttempts = 64;

    // Reruns of a trial after a native libtorch error (see SweepRun.RunWithNativeRetry).
    private const int NativeErrorRetries = 1;

    private readonly int _seed;
    private readonly object _gate = new();
    private QuantizationSearchSpace _space = new();
    private ISweepTuner _tuner = new TreeParzenTuner();
    private ISweepTrialRunner? _runner;
    private SweepObjective _objective = SweepObjective.MinimizePerplexity;
    private SuccessiveHalving _schedule = SuccessiveHalving.Single(DefaultEpochs);
    private ISweepMonitor? _monitor;
    private int _maxModels;
    private double _timeSeconds;
    private int _parallelism = 1;
    private string? _stateFile;
    private string? _checkpointRoot;
    private readonly IHost? _host;

    /// <summary>Epochs per trial without successive halving, unless <see cref="SetEpochs"/> says otherwise: 6 (as <see cref="TrainingOptions.Epochs"/>).</summary>
    public const int DefaultEpochs = 6;

    /// <summary>An experiment. <paramref name="seed"/> seeds the tuner and is passed to every trial (default 1).</summary>
    public QuantizationExperiment(int seed = 1) => _seed = seed;

    /// <summary>
    /// An experiment bound to an ML.NET environment (<c>mlContext.Quantized().CreateExperiment()</c>): the MLContext's
    /// seed (or one drawn from it when it has none), its log, and its cancellation.
    /// </summary>
    internal QuantizationExperiment(IHostEnvironment env)
    {
        Contracts.CheckValue(env, nameof(env));
        _host = env.Register(nameof(QuantizationExperiment));
        SupportedMLNet.Check(_host);
        _seed = HostTraining.Seed(env, _host, null);
    }

    /// <summary>The seed of the tuner and of every trial.</summary>
    public int Seed => _seed;

    /// <summary>The space to search. Default <c>new QuantizationSearchSpace()</c>; validated here and again when the sweep starts.</summary>
    public QuantizationExperiment SetSearchSpace(QuantizationSearchSpace searchSpace)
    {
        ArgumentNullException.ThrowIfNull(searchSpace);
        searchSpace.Validate();
        _space = searchSpace;
        return this;
    }

    /// <summary>The tuner. Default <see cref="TreeParzenTuner"/> with its defaults.</summary>
    public QuantizationExperiment SetTuner(ISweepTuner tuner)
    {
        _tuner = tuner ?? throw new ArgumentNullException(nameof(tuner));
        return this;
    }

    /// <summary>What trains and measures one configuration (required).</summary>
    public QuantizationExperiment SetTrialRunner(ISweepTrialRunner runner)
    {
        _runner = runner ?? throw new ArgumentNullException(nameof(runner));
        return this;
    }

    /// <summary>A trial runner as a function (required unless an <see cref="ISweepTrialRunner"/> is set).</summary>
    public QuantizationExperiment SetTrialRunner(Func<TrialContext, CancellationToken, TrialReport> runner)
    {
        ArgumentNullException.ThrowIfNull(runner);
        _runner = new DelegateTrialRunner(runner);
        return this;
    }

    /// <summary>What to optimize. Default <see cref="SweepObjective.MinimizePerplexity"/>.</summary>
    public QuantizationExperiment SetObjective(SweepObjective objective)
    {
        _objective = objective ?? throw new ArgumentNullException(nameof(objective));
        return this;
    }

    /// <summary>
    /// Stop after this many seconds (running trials are cancelled and reported <see cref="TrialStatus.Stopped"/>).
    /// 0 = no time limit (the default). At least one of the time and trial budgets must be set.
    /// </summary>
    public QuantizationExperiment SetTrainingTimeInSeconds(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
            throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "SetTrainingTimeInSeconds: the time budget must be zero (no limit) or a positive number of seconds.");
        _timeSeconds = seconds;
        return this;
    }

    /// <summary>
    /// Stop after this many configurations (trials; a resumed sweep counts the trials of its state file). 0 = no
    /// limit (the default). At least one of the time and trial budgets must be set.
    /// </summary>
    public QuantizationExperiment SetMaxModelToExplore(int maxModels)
    {
        if (maxModels < 0)
            throw new ArgumentOutOfRangeException(nameof(maxModels), maxModels, "SetMaxModelToExplore: the trial budget must be zero (no limit) or positive.");
        _maxModels = maxModels;
        return this;
    }

    /// <summary>
    /// Trials run at the same time (default 1). Results do not depend on it. Above 1, libtorch's intra-op threads are
    /// shared out for the sweep's duration (<see cref="Environment.ProcessorCount"/> / trials each, at least 1) and
    /// restored afterwards: oversubscribed libtorch threads spin, and training ran about 10 times slower that way on a
    /// 2-core machine.
    /// </summary>
    public QuantizationExperiment SetParallelism(int trials)
    {
        if (trials < 1)
            throw new ArgumentOutOfRangeException(nameof(trials), trials, "SetParallelism: at least 1 trial at a time.");
        _parallelism = trials;
        return this;
    }

    /// <summary>Every trial trains <paramref name="epochs"/> epochs, no early stopping (default <see cref="DefaultEpochs"/>).</summary>
    public QuantizationExperiment SetEpochs(int epochs)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "SetEpochs: at least 1 epoch.");
        _schedule = SuccessiveHalving.Single(epochs);
        return this;
    }

    /// <summary>
    /// Multi-fidelity early stopping: brackets of eta^K configurations train to <paramref name="minEpochs"/>, the top
    /// 1/<paramref name="reductionFactor"/> continue (from their checkpoints) to eta times more epochs, and so on up to
    /// <paramref name="maxEpochs"/>. E.g. 1, 9, 3: nine configurations train 1 epoch, three go on to 3, one to 9.
    /// </summary>
    public QuantizationExperiment SetSuccessiveHalving(int minEpochs, int maxEpochs, int reductionFactor = 3)
    {
        _schedule = new SuccessiveHalving(minEpochs, maxEpochs, reductionFactor);
        return this;
    }

    /// <summary>
    /// Save the sweep state to <paramref name="path"/> (JSON) after every trial run, and resume from it when it
    /// exists. Default none (nothing saved; a killed sweep starts over).
    /// </summary>
    public QuantizationExperiment SetStateFile(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("SetStateFile: give a file path.", nameof(path));
        _stateFile = path;
        return this;
    }

    /// <summary>
    /// The folder under which each trial gets its own checkpoint folder (<c>trial-0007</c>) with its model file; it is
    /// kept after the sweep, so every trial's <see cref="TrialResult.ModelPath"/> stays valid. Default: next to the state
    /// file (<c>&lt;state file&gt;.trials</c>, also kept); without a state file, a new folder under the temporary path that
    /// is deleted when the sweep ends (the Pareto-front models are then kept in memory: <see cref="TrialResult.OpenModel"/>).
    /// </summary>
    public QuantizationExperiment SetCheckpointDirectory(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("SetCheckpointDirectory: give a folder path.", nameof(path));
        _checkpointRoot = path;
        return this;
    }

    /// <summary>Receives running, completed, pruned and failed trials.</summary>
    public QuantizationExperiment SetMonitor(ISweepMonitor monitor)
    {
        _monitor = monitor ?? throw new ArgumentNullException(nameof(monitor));
        return this;
    }

    /// <summary>Receives each trial when it completes, is pruned or fails.</summary>
    public QuantizationExperiment SetMonitor(IProgress<TrialResult> progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        _monitor = new ProgressMonitor(progress);
        return this;
    }

    /// <summary>
    /// Runs the sweep until the trial budget, the time budget, cancellation or the end of the search space, and returns
    /// every trial that ran. Cancellation is not an error: the trials finished so far are returned (and saved); an
    /// experiment from <c>mlContext.Quantized().CreateExperiment()</c> is also cancelled by <c>MLContext.CancelExecution()</c>.
    /// A sweep without a state file or checkpoint folder deletes its temporary folder before it returns or throws.
    /// Throws <see cref="InvalidOperationException"/> when no trial runner or budget is set, or when the state file
    /// was written by a sweep with another seed, objective or epoch schedule.
    /// </summary>
    public Task<SweepResult> RunAsync(CancellationToken cancellationToken = default)
    {
        var runner = _runner ?? throw new InvalidOperationException("No trial runner: call SetTrialRunner first.");
        if (_maxModels == 0 && _timeSeconds == 0)
            throw new InvalidOperationException("No budget: call SetMaxModelToExplore and/or SetTrainingTimeInSeconds, or the sweep would not end.");
        _space.Validate();
        return _host is null ? Start(runner, _monitor, cancellationToken) : RunOnHostAsync(_host, runner, cancellationToken);
    }

    /// <summary>Freezes the settings into a run and starts it.</summary>
    private Task<SweepResult> Start(ISweepTrialRunner runner, ISweepMonitor? monitor, CancellationToken cancellationToken)
    {
        bool temporary = _checkpointRoot is null && _stateFile is null;
        var root = _checkpointRoot ?? (temporary
            ? Path.Combine(Path.GetTempPath(), "mlq-sweep-" + Guid.NewGuid().ToString("N"))
            : Path.GetFullPath(_stateFile!) + ".trials");
        var run = new SweepRun(this, runner, _space.Clone(), _tuner, _objective, _schedule, monitor, _maxModels, _timeSeconds, _parallelism, _stateFile,
            root, temporary);
        return run.RunAsync(cancellationToken);
    }

    /// <summary>The run of an experiment bound to an ML.NET host: logged to its channel, cancelled with it.</summary>
    private async Task<SweepResult> RunOnHostAsync(IHost host, ISweepTrialRunner runner, CancellationToken cancellationToken)
    {
        using var ch = host.Start("Quantization sweep");
        using var cancellation = new HostCancellation(host, cancellationToken);
        var ci = CultureInfo.InvariantCulture;
        ch.Info(string.Format(ci, "Sweep: {0} ({1}), epochs [{2}], seed {3}, budget {4} trials / {5} s, {6} trial(s) at a time{7}.",
            _objective.Name, _objective.HigherIsBetter ? "maximize" : "minimize", string.Join(", ", _schedule.Rungs), _seed,
            _maxModels == 0 ? "no limit of" : _maxModels.ToString(ci), _timeSeconds == 0 ? "no limit" : _timeSeconds.ToString(ci), _parallelism,
            _stateFile is null ? "" : $", state file '{_stateFile}'"));
        var result = await Start(runner, new ChannelMonitor(ch, _monitor), cancellation.Token).ConfigureAwait(false);
        ch.Info($"Sweep ended ({result.StopReason}) after {result.Trials.Count} trials in {result.Elapsed.TotalSeconds.ToString("F1", ci)} s; " +
                (result.Best is { } best ? $"best: {best}" : "no trial completed") + ".");
        return result;
    }

    /// <summary>One run of the experiment: the settings frozen at <see cref="RunAsync"/>.</summary>
    private sealed class SweepRun(
        QuantizationExperiment owner, ISweepTrialRunner runner, QuantizationSearchSpace space, ISweepTuner tuner, SweepObjective objective,
        SuccessiveHalving schedule, ISweepMonitor? monitor, int maxModels, double timeSeconds, int parallelism, string? stateFile, string checkpointRoot,
        bool temporaryRoot)
    {
        private readonly object _gate = owner._gate;
        private readonly int _seed = owner._seed;
        private SweepState _state = null!;

        public async Task<SweepResult> RunAsync(CancellationToken cancellationToken)
        {
            if (!temporaryRoot) return await RunTrialsAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return KeepModelsInMemory(await RunTrialsAsync(cancellationToken).ConfigureAwait(false));
            }
            finally
            {
                DeleteTemporaryFolder();
            }
        }

        /// <summary>
        /// The result with the model files of the Pareto front (the best trial and every <see cref="SweepResult.BestUnderBytes"/>
        /// answer are on it) read into memory and every model path cleared, before the temporary folder is deleted.
        /// </summary>
        private SweepResult KeepModelsInMemory(SweepResult result)
        {
            var keep = result.ParetoFront.Select(t => t.Id).ToHashSet();
            var trials = result.Trials
                .Select(t => t.WithoutModelFile(keep.Contains(t.Id) && t.ModelPath is { } path && File.Exists(path) ? File.ReadAllBytes(path) : null))
                .ToArray();
            return new SweepResult(trials, result.Objective, result.StopReason, result.Elapsed);
        }

        /// <summary>Deletes the sweep's own temporary folder (best effort: a file another process holds open is left).</summary>
        private void DeleteTemporaryFolder()
        {
            try
            {
                if (Directory.Exists(checkpointRoot)) Directory.Delete(checkpointRoot, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        private async Task<SweepResult> RunTrialsAsync(CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            _state = LoadOrCreateState();
            using var timeLimit = new CancellationTokenSource();
            if (timeSeconds > 0) timeLimit.CancelAfter(TimeSpan.FromSeconds(timeSeconds));
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeLimit.Token);
            var token = linked.Token;
            SweepStopReason? reason = null;

            // Finish the brackets a killed run left open, then propose new ones.
            foreach (var bracket in _state.Trials.Where(t => t.Status is null).Select(t => t.Bracket).Distinct().OrderBy(b => b).ToList())
            {
                if (token.IsCancellationRequested) break;
                await RunBracketAsync(_state.Trials.Where(t => t.Bracket == bracket).OrderBy(t => t.Id).ToList(), token).ConfigureAwait(false);
            }
            while (!token.IsCancellationRequested)
            {
                int remaining = maxModels > 0 ? maxModels - _state.Trials.Count : int.MaxValue;
                if (remaining <= 0) { reason = SweepStopReason.TrialBudget; break; }
                int size = Math.Min(schedule.Rungs.Count == 1 ? parallelism : schedule.BracketSize, remaining);
                var bracket = ProposeBracket(size);
                if (bracket.Count == 0) { reason = SweepStopReason.SearchSpaceExhausted; break; }
                await RunBracketAsync(bracket, token).ConfigureAwait(false);
            }
            reason ??= cancellationToken.IsCancellationRequested ? SweepStopReason.Cancelled : SweepStopReason.TimeBudget;

            lock (_gate)
            {
                Save();
                var trials = _state.Trials.Where(t => t.HasRun).OrderBy(t => t.Id).Select(t => t.Snapshot()).ToArray();
                return new SweepResult(trials, objective, reason.Value, clock.Elapsed);
            }
        }

        private SweepState LoadOrCreateState()
        {
            var fresh = new SweepState { Seed = _seed, Objective = objective.Name, Maximize = objective.HigherIsBetter, Rungs = schedule.Rungs.ToList() };
            if (stateFile is null) return fresh;
            var loaded = SweepState.Load(stateFile);
            if (loaded is null) return fresh;
            if (loaded.Seed != _seed)
                throw new InvalidOperationException($"The state file '{stateFile}' belongs to a sweep with seed {loaded.Seed}, not {_seed}. Use the same seed to resume, or another state file.");
            if (!string.Equals(loaded.Objective, objective.Name, StringComparison.OrdinalIgnoreCase) || loaded.Maximize != objective.HigherIsBetter)
                throw new InvalidOperationException(
                    $"The state file '{stateFile}' belongs to a sweep that {(loaded.Maximize ? "maximizes" : "minimizes")} '{loaded.Objective}', not '{objective}'. " +
                    "Call SetObjective as before to resume, or use another state file.");
            if (!loaded.Rungs.SequenceEqual(schedule.Rungs))
                throw new InvalidOperationException(
                    $"The state file '{stateFile}' was written with the epoch budgets [{string.Join(", ", loaded.Rungs)}], not [{string.Join(", ", schedule.Rungs)}]. " +
                    "Call SetEpochs or SetSuccessiveHalving as before to resume, or use another state file.");
            return loaded;
        }

        private List<TrialState> ProposeBracket(int size)
        {
            var tried = _state.Trials.Select(t => t.Configuration.Key).ToHashSet();
            var history = _state.Trials.Where(t => t.Rungs.Count > 0 || t.Status == TrialStatus.Failed).OrderBy(t => t.Id).Select(t => t.Snapshot()).ToArray();
            int bracketId = _state.Trials.Count == 0 ? 0 : _state.Trials.Max(t => t.Bracket) + 1;
            var bracket = new List<TrialState>();
            for (int j = 0; j < size; j++)
            {
                int id = _state.Trials.Count;
                QuantizationConfiguration? configuration = null;
                for (int attempt = 0; attempt < MaxProposalAttempts; attempt++)
                {
                    var proposal = tuner.Propose(new TunerContext(space, objective, _seed, id, attempt, history, tried));
                    if (proposal is null) break;
                    proposal.Validate($"The configuration proposed by {tuner.GetType().Name}");
                    if (tried.Add(proposal.Key)) { configuration = proposal; break; }
                }
                if (configuration is null) break;
                var trial = new TrialState { Id = id, Bracket = bracketId, Configuration = configuration };
                _state.Trials.Add(trial);
                bracket.Add(trial);
            }
            lock (_gate) Save();
            return bracket;
        }

        /// <summary>Successive halving over one bracket; skips runs whose results the state already holds.</summary>
        private async Task RunBracketAsync(List<TrialState> bracket, CancellationToken token)
        {
            var entering = bracket;
            for (int rung = 0; rung < schedule.Rungs.Count; rung++)
            {
                int epochs = schedule.Rungs[rung];
                var toRun = entering.Where(t => t.Status != TrialStatus.Failed && t.ResultAt(epochs) is null).ToList();
                await RunRungAsync(toRun, rung, token).ConfigureAwait(false);
                if (token.IsCancellationRequested) return;

                var ranked = entering.Where(t => t.Status != TrialStatus.Failed && t.ResultAt(epochs) is not null)
                    .OrderBy(t => objective.Loss(t.ResultAt(epochs)!.Metric)).ThenBy(t => t.Id).ToList();
                lock (_gate)
                {
                    if (rung == schedule.Rungs.Count - 1)
                    {
                        foreach (var t in ranked) Finish(t, TrialStatus.Completed);
                        Save();
                        return;
                    }
                    int promoted = schedule.Promoted(entering.Count);
                    foreach (var t in ranked.Skip(promoted)) Finish(t, TrialStatus.Pruned);
                    Save();
                    entering = ranked.Take(promoted).ToList();
                }
            }
        }

        private async Task RunRungAsync(List<TrialState> trials, int rung, CancellationToken token)
        {
            int workerCount = Math.Min(parallelism, trials.Count);
            int threads = torch.get_num_threads();
            if (workerCount > 1) torch.set_num_threads(Math.Max(1, Environment.ProcessorCount / workerCount));
            try
            {
                await RunWorkersAsync(trials, rung, workerCount, token).ConfigureAwait(false);
            }
            finally
            {
                if (workerCount > 1) torch.set_num_threads(threads);
            }
        }

        private async Task RunWorkersAsync(List<TrialState> trials, int rung, int workerCount, CancellationToken token)
        {
            int next = -1;
            void Work()
            {
                int i;
                while (!token.IsCancellationRequested && (i = Interlocked.Increment(ref next)) < trials.Count)
                    RunTrial(trials[i], rung, token);
            }
            var workers = Enumerable.Range(0, workerCount)
                .Select(_ => Task.Factory.StartNew(Work, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))
                .ToArray();
            await Task.WhenAll(workers).ConfigureAwait(false);
        }

        private void RunTrial(TrialState trial, int rung, CancellationToken token)
        {
            int epochs = schedule.Rungs[rung];
            var context = new TrialContext(trial.Id, trial.Configuration, epochs, rung == 0 ? 0 : schedule.Rungs[rung - 1], rung, schedule.Rungs.Count,
                Path.Combine(checkpointRoot, FormattableString.Invariant($"trial-{trial.Id:D4}")), _seed);
            lock (_gate) monitor?.ReportRunningTrial(context);
            var clock = Stopwatch.StartNew();
            TrialReport report;
            double metric;
            try
            {
                report = RunWithNativeRetry(context, token);
                metric = objective.ValueOf(report);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                lock (_gate)
                {
                    trial.Interrupted = true;
                    trial.Seconds += clock.Elapsed.TotalSeconds;
                }
                return;
            }
            catch (Exception e)
            {
                lock (_gate)
                {
                    trial.Seconds += clock.Elapsed.TotalSeconds;
                    trial.Error = $"{e.GetType().Name}: {e.Message}";
                    Finish(trial, TrialStatus.Failed);
                    Save();
                }
                return;
            }
            lock (_gate)
            {
                double seconds = clock.Elapsed.TotalSeconds;
                trial.Seconds += seconds;
                trial.Rungs.Add(new RungResult(epochs, metric, report.PackedBytes, seconds, report.Metrics, report.ModelPath));
                Save();
            }
        }

        /// <summary>
        /// Runs the trial; a native libtorch error (<see cref="System.Runtime.InteropServices.ExternalException"/>) is
        /// retried once, resuming from the trial's checkpoint: a transient native failure of a healthy configuration should
        /// not fail its trial. (The one seen, TorchSharp 0.107 finalizing a temporary Scalar during the native call that
        /// reads it, "Unknown scalar type", the library's own calls and optimizers no longer risk; a trial runner's code may.)
        /// </summary>
        private TrialReport RunWithNativeRetry(TrialContext context, CancellationToken token)
        {
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    return runner.Run(context, token) ?? throw new InvalidOperationException("The trial runner returned null instead of a TrialReport.");
                }
                catch (System.Runtime.InteropServices.ExternalException) when (attempt < NativeErrorRetries && !token.IsCancellationRequested)
                {
                }
            }
        }

        /// <summary>Sets a final status and tells the monitor (call under the lock).</summary>
        private void Finish(TrialState trial, TrialStatus status)
        {
            if (trial.Status is not null) return; // decided in an earlier run of this sweep
            trial.Status = status;
            var result = trial.Snapshot();
            if (status == TrialStatus.Failed) monitor?.ReportFailedTrial(result);
            else monitor?.ReportCompletedTrial(result);
        }

        private void Save()
        {
            if (stateFile is not null) _state.Save(stateFile);
        }
    }

    /// <summary>Logs the trials to an ML.NET channel and passes them on to the user's monitor, if any.</summary>
    private sealed class ChannelMonitor(IChannel channel, ISweepMonitor? inner) : ISweepMonitor
    {
        public void ReportRunningTrial(TrialContext context)
        {
            channel.Info($"Trial #{context.TrialId}: training to {context.Epochs} epochs{(context.Rung > 0 ? $" (rung {context.Rung + 1} of {context.RungCount})" : "")}: {context.Configuration.Key}.");
            inner?.ReportRunningTrial(context);
        }

        public void ReportCompletedTrial(TrialResult result)
        {
            channel.Info($"Trial {result}.");
            inner?.ReportCompletedTrial(result);
        }

        public void ReportFailedTrial(TrialResult result)
        {
            channel.Warning($"Trial {result}.");
            inner?.ReportFailedTrial(result);
        }
    }

    /// <summary>Wraps a function as a runner.</summary>
    private sealed class DelegateTrialRunner(Func<TrialContext, CancellationToken, TrialReport> run) : ISweepTrialRunner
    {
        public TrialReport Run(TrialContext context, CancellationToken cancellationToken) => run(context, cancellationToken);
    }
}
