using System.Collections.Concurrent;
using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// <see cref="IntraOpThreads"/>: every part runs exactly once whatever the thread count, on more than one thread when asked
/// for two, an exception in a part reaches the caller, and on Linux the parts run on libtorch's own OpenMP threads.
/// </summary>
[TestClass]
public sealed class IntraOpThreadsTests
{
    [TestMethod]
    [DataRow(1, 1)]
    [DataRow(7, 1)]
    [DataRow(7, 2)]
    [DataRow(100, 2)]
    [DataRow(3, 8)]
    public void EveryPartRunsOnce(int parts, int threads)
    {
        var runs = new int[parts];
        IntraOpThreads.For(parts, threads, part => Interlocked.Increment(ref runs[part]));
        CollectionAssert.AreEqual(Enumerable.Repeat(1, parts).ToArray(), runs);
    }

    [TestMethod]
    public void TwoThreadsShareTheParts()
    {
        // Each part waits until a second thread has started one, so one thread alone could never finish them.
        var threadIds = new ConcurrentDictionary<int, bool>();
        using var bothStarted = new CountdownEvent(2);
        IntraOpThreads.For(2, 2, part =>
        {
            threadIds[Environment.CurrentManagedThreadId] = true;
            bothStarted.Signal();
            Assert.IsTrue(bothStarted.Wait(TimeSpan.FromMinutes(1)), "the other part never started");
        });
        Assert.AreEqual(2, threadIds.Count);
    }

    [TestMethod]
    public void AnExceptionInAPartReachesTheCaller()
    {
        var thrown = Assert.ThrowsExactly<InvalidOperationException>(() =>
            IntraOpThreads.For(10, 2, part => { if (part == 6) throw new InvalidOperationException("part 6"); }));
        Assert.AreEqual("part 6", thrown.Message);
    }

    [TestMethod]
    public void OnLinuxThePartsRunOnLibTorchsOpenMpThreads()
    {
        if (!OperatingSystem.IsLinux()) Assert.Inconclusive("libtorch's Linux builds use GNU OpenMP; elsewhere .NET's thread pool runs the parts.");
        Assert.IsTrue(IntraOpThreads.SharesLibTorchThreads, $"GOMP_parallel of the libgomp beside libtorch_cpu was not found ({torch.get_num_threads()} threads)");
    }
}
