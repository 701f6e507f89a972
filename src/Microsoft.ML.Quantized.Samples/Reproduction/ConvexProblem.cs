namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>
/// A convex problem for Li et al. 2017's study of quantized training (least squares or L2-regularized logistic
/// regression on Gaussian data with a planted solution): minibatch gradients, the full objective and its minimum f*.
/// Everything in double precision, so the gaps measured are the methods', not float rounding's.
/// </summary>
internal sealed class ConvexProblem
{
    private readonly double[][] _x;
    private readonly double[] _y;

    private ConvexProblem(string name, double[][] x, double[] y, bool logistic, double l2)
    {
        Name = name;
        _x = x;
        _y = y;
        Logistic = logistic;
        L2 = l2;
        Optimum = Minimize();
        MinimumLoss = Loss(Optimum);
    }

    /// <summary>"least squares" or "logistic regression".</summary>
    public string Name { get; }

    /// <summary>Logistic loss (labels +-1) instead of squared error.</summary>
    public bool Logistic { get; }

    /// <summary>The L2 term lambda/2 ||w||^2 (logistic regression; 0 for least squares).</summary>
    public double L2 { get; }

    /// <summary>Examples.</summary>
    public int Count => _x.Length;

    /// <summary>Weights.</summary>
    public int Dimension => _x[0].Length;

    /// <summary>The minimizer w* (to 1e-12 in gradient norm).</summary>
    public double[] Optimum { get; }

    /// <summary>f(w*).</summary>
    public double MinimumLoss { get; }

    /// <summary>
    /// Least squares: x ~ N(0, 1)^d, a planted w0 ~ U(-1, 1)^d, y = x.w0 + N(0, 0.5^2); f(w) = mean (x.w - y)^2 / 2.
    /// </summary>
    public static ConvexProblem LeastSquares(int count, int dimension, int seed)
    {
        var (x, w0, random) = Data(count, dimension, seed);
        var y = x.Select(row => Dot(row, w0) + 0.5 * Gaussian(random)).ToArray();
        return new ConvexProblem("least squares", x, y, logistic: false, l2: 0);
    }

    /// <summary>
    /// Logistic regression: x ~ N(0, 1)^d, a planted w0 ~ U(-1, 1)^d, y = +1 with probability sigmoid(x.w0 / 2), else -1;
    /// f(w) = mean log(1 + exp(-y x.w)) + 1e-3/2 ||w||^2.
    /// </summary>
    public static ConvexProblem LogisticRegression(int count, int dimension, int seed)
    {
        var (x, w0, random) = Data(count, dimension, seed);
        var y = x.Select(row => random.NextDouble() < Sigmoid(Dot(row, w0) / 2) ? 1.0 : -1.0).ToArray();
        return new ConvexProblem("logistic regression", x, y, logistic: true, l2: 1e-3);
    }

    /// <summary>f(w) over all examples.</summary>
    public double Loss(ReadOnlySpan<double> w)
    {
        double sum = 0;
        for (int i = 0; i < _x.Length; i++)
        {
            double z = Dot(_x[i], w);
            sum += Logistic ? Softplus(-_y[i] * z) : 0.5 * (z - _y[i]) * (z - _y[i]);
        }
        double norm = 0;
        foreach (double v in w) norm += v * v;
        return sum / _x.Length + 0.5 * L2 * norm;
    }

    /// <summary>The gradient of f over the examples <paramref name="batch"/> at <paramref name="w"/>, into <paramref name="gradient"/>.</summary>
    public void Gradient(ReadOnlySpan<double> w, ReadOnlySpan<int> batch, Span<double> gradient)
    {
        for (int j = 0; j < gradient.Length; j++) gradient[j] = L2 * w[j];
        double scale = 1.0 / batch.Length;
        foreach (int i in batch)
        {
            var x = _x[i];
            double z = Dot(x, w);
            double r = Logistic ? -_y[i] * Sigmoid(-_y[i] * z) : z - _y[i];
            for (int j = 0; j < x.Length; j++) gradient[j] += scale * r * x[j];
        }
    }

    /// <summary>Full-batch Newton's method from 0 (exact for least squares in one step) until the gradient norm is below 1e-12.</summary>
    private double[] Minimize()
    {
        int d = Dimension;
        var w = new double[d];
        var all = Enumerable.Range(0, Count).ToArray();
        var g = new double[d];
        for (int iteration = 0; iteration < 100; iteration++)
        {
            Gradient(w, all, g);
            if (Math.Sqrt(g.Sum(v => v * v)) < 1e-12) break;
            var h = Hessian(w);
            var step = Solve(h, g);
            for (int j = 0; j < d; j++) w[j] -= step[j];
        }
        return w;
    }

    private double[,] Hessian(ReadOnlySpan<double> w)
    {
        int d = Dimension;
        var h = new double[d, d];
        for (int i = 0; i < _x.Length; i++)
        {
            var x = _x[i];
            double z = Logistic ? _y[i] * Dot(x, w) : 0;
            double c = Logistic ? Sigmoid(z) * Sigmoid(-z) : 1.0;
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++) h[a, b] += c * x[a] * x[b] / Count;
        }
        for (int a = 0; a < d; a++) h[a, a] += L2;
        return h;
    }

    /// <summary>Solves h s = g by Gaussian elimination with partial pivoting (h is symmetric positive definite).</summary>
    private static double[] Solve(double[,] h, double[] g)
    {
        int d = g.Length;
        var a = (double[,])h.Clone();
        var b = (double[])g.Clone();
        for (int k = 0; k < d; k++)
        {
            int pivot = k;
            for (int r = k + 1; r < d; r++)
                if (Math.Abs(a[r, k]) > Math.Abs(a[pivot, k])) pivot = r;
            for (int c = 0; c < d; c++) (a[k, c], a[pivot, c]) = (a[pivot, c], a[k, c]);
            (b[k], b[pivot]) = (b[pivot], b[k]);
            for (int r = k + 1; r < d; r++)
            {
                double f = a[r, k] / a[k, k];
                for (int c = k; c < d; c++) a[r, c] -= f * a[k, c];
                b[r] -= f * b[k];
            }
        }
        var s = new double[d];
        for (int k = d - 1; k >= 0; k--)
        {
            double sum = b[k];
            for (int c = k + 1; c < d; c++) sum -= a[k, c] * s[c];
            s[k] = sum / a[k, k];
        }
        return s;
    }

    private static (double[][] X, double[] W0, Random Random) Data(int count, int dimension, int seed)
    {
        if (count < 2 || dimension < 1) throw new ArgumentException($"A convex problem needs at least 2 examples and 1 weight; got {count} x {dimension}.");
        var random = new Random(seed);
        var w0 = Enumerable.Range(0, dimension).Select(_ => 2 * random.NextDouble() - 1).ToArray();
        var x = Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, dimension).Select(_ => Gaussian(random)).ToArray()).ToArray();
        return (x, w0, random);
    }

    private static double Gaussian(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double sum = 0;
        for (int j = 0; j < a.Length; j++) sum += a[j] * b[j];
        return sum;
    }

    private static double Sigmoid(double z) => z >= 0 ? 1 / (1 + Math.Exp(-z)) : Math.Exp(z) / (1 + Math.Exp(z));

    private static double Softplus(double z) => z > 0 ? z + Math.Log(1 + Math.Exp(-z)) : Math.Log(1 + Math.Exp(z));
}
